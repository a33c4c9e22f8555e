// Memory and data movement on the CPU backend: host memory is device memory, so transfers are
// memcpy. Row loops are OpenMP-parallel only when the copy is big enough to pay for the threads.
#include <cstdlib>
#include <cstring>
#include <new>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
constexpr size_t kAlignment = 64;                  // one cache line / AVX-512 vector
constexpr long long kParallelMinElements = 1 << 15;  // below this, threads cost more than they save
}  // namespace

std::string CpuBackend::name() const { return "cpu"; }

void* CpuBackend::malloc_bytes(size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment (and > 0 to be portable).
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void CpuBackend::free_bytes(void* p) { std::free(p); }

void CpuBackend::zero(void* p, size_t bytes) {
  if (bytes) std::memset(p, 0, bytes);
}

void CpuBackend::to_device(void* dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}

void CpuBackend::to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}

// dst[r, c] (+)= src[r, c]; rows are independent, so the result does not depend on threads.
void CpuBackend::strided_copy(float* dst, int dst_ld, const float* src, int src_ld, int rows,
                              int cols, bool accumulate) {
  const bool parallel = (long long)rows * cols >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (int r = 0; r < rows; ++r) {
    float* d = dst + (size_t)r * dst_ld;
    const float* s = src + (size_t)r * src_ld;
    if (accumulate) {
      for (int c = 0; c < cols; ++c) d[c] += s[c];
    } else {
      std::memcpy(d, s, sizeof(float) * cols);
    }
  }
}

// out [M, C] = inp[idx[i], :]
void CpuBackend::gather_rows(float* out, const float* inp, const int* idx, int M, int C) {
  const bool parallel = (long long)M * C >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < M; ++i)
    std::memcpy(out + (size_t)i * C, inp + (size_t)idx[i] * C, sizeof(float) * C);
}

// dinp[idx[i], :] += dout[i, :]; idx entries are distinct, so rows never race.
void CpuBackend::scatter_add_rows(float* dinp, const float* dout, const int* idx, int M, int C) {
  const bool parallel = (long long)M * C >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < M; ++i) {
    float* d = dinp + (size_t)idx[i] * C;
    const float* s = dout + (size_t)i * C;
    for (int c = 0; c < C; ++c) d[c] += s[c];
  }
}

void CpuBackend::add_inplace(float* y, const float* x, size_t n) {
  const long long len = (long long)n;
#pragma omp parallel for simd schedule(static) if (len >= kParallelMinElements)
  for (long long i = 0; i < len; ++i) y[i] += x[i];
}

void CpuBackend::scale_inplace(float* y, float a, size_t n) {
  const long long len = (long long)n;
#pragma omp parallel for simd schedule(static) if (len >= kParallelMinElements)
  for (long long i = 0; i < len; ++i) y[i] *= a;
}

}  // namespace statex
