#include "sim/core/backend.h"

#include <stdexcept>

#include "sim/core/config.h"
#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

#ifndef STATEX_WITH_CUDA
// Built without CUDA: the factory explains how to get it.
std::unique_ptr<Backend> make_cuda_backend() {
  throw ConfigError(
      "--device cuda: this binary was built without CUDA (no nvcc found at configure time, or "
      "-DSTATEX_CUDA=OFF). Rebuild with CUDA, or use --device cpu.");
}
bool cuda_available(std::string* why_not) {
  if (why_not) *why_not = "built without CUDA";
  return false;
}
#endif

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda") return make_cuda_backend();
  throw ConfigError("--device: unknown device '" + device + "' (use cpu or cuda)");
}

}  // namespace statex
