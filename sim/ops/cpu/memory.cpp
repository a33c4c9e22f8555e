// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

std::string CpuBackend::name() const { throw std::logic_error("cpu op name not implemented"); }

void* CpuBackend::malloc_bytes(size_t bytes) {
  throw std::logic_error("cpu op malloc_bytes not implemented");
}

void CpuBackend::free_bytes(void* p) {
  throw std::logic_error("cpu op free_bytes not implemented");
}

void CpuBackend::zero(void* p, size_t bytes) {
  throw std::logic_error("cpu op zero not implemented");
}

void CpuBackend::to_device(void* dst, const void* host_src, size_t bytes) {
  throw std::logic_error("cpu op to_device not implemented");
}

void CpuBackend::to_host(void* host_dst, const void* src, size_t bytes) {
  throw std::logic_error("cpu op to_host not implemented");
}

void CpuBackend::strided_copy(float* dst, int dst_ld, const float* src, int src_ld, int rows,
                              int cols, bool accumulate) {
  throw std::logic_error("cpu op strided_copy not implemented");
}

void CpuBackend::gather_rows(float* out, const float* inp, const int* idx, int M, int C) {
  throw std::logic_error("cpu op gather_rows not implemented");
}

void CpuBackend::scatter_add_rows(float* dinp, const float* dout, const int* idx, int M, int C) {
  throw std::logic_error("cpu op scatter_add_rows not implemented");
}

void CpuBackend::add_inplace(float* y, const float* x, size_t n) {
  throw std::logic_error("cpu op add_inplace not implemented");
}

void CpuBackend::scale_inplace(float* y, float a, size_t n) {
  throw std::logic_error("cpu op scale_inplace not implemented");
}

}  // namespace statex
