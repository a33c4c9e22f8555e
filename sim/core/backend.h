#pragma once
// The Backend interface: memory services written here, and one pure virtual method per op of
// the op list (sim/core/ops.def, which also holds each op's math, shapes and the argument
// conventions). Implemented twice with the same signatures: CpuBackend (sim/ops/cpu/<stem>.cpp,
// Eigen + OpenMP, the reference) and CudaBackend (kernels/<stem>.cu). The model and trainer are
// written once against this interface.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace statex {

// Total output width of a stacked projection: sum of ocs[0..parts).
inline int stacked_width(const int* ocs, int parts) {
  int w = 0;
  for (int i = 0; i < parts; ++i) w += ocs[i];
  return w;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda"

  // ---------------- memory services (not ops: not timed, not verified) ----------------
  virtual void* malloc_bytes(size_t bytes) = 0;
  virtual void free_bytes(void* p) = 0;
  virtual void to_device(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void synchronize() {}

  // ---------------- ops: one virtual method per entry of the op list ----------------
#define STATEX_OP(stem, name, ret, params, args) virtual ret name params = 0;
#include "sim/core/ops.def"
};

// The CPU reference backend (always available).
std::unique_ptr<Backend> make_cpu_backend();
// The CUDA backend; throws std::runtime_error when built without CUDA or no device is present.
std::unique_ptr<Backend> make_cuda_backend();
// True when this binary was built with CUDA and a device is visible.
bool cuda_available(std::string* why_not = nullptr);
std::unique_ptr<Backend> make_backend(const std::string& device);

}  // namespace statex
