// Memory and data movement on the CPU backend: host memory is device memory, so transfers are
// memcpy. Row loops are OpenMP-parallel only when the copy is big enough to pay for the threads.
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
constexpr size_t kAlignment = 64;                  // one cache line / AVX-512 vector
// Buffers from this size on are 2 MiB-aligned and marked for transparent huge pages (the kernel's
// default THP mode is "madvise": without the hint they get 4 KiB pages). The activation and
// gradient buffers are streamed whole by every pass; huge pages cut their TLB misses and the
// page-fault cost of first touch.
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugePageMinBytes = 2 * kHugePage;
constexpr long long kParallelMinElements = 1 << 15;  // below this, threads cost more than they save
}  // namespace

std::string CpuBackend::name() const { return "cpu"; }

void* CpuBackend::malloc_bytes(size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment (and > 0 to be portable).
  const size_t align = bytes >= kHugePageMinBytes ? kHugePage : kAlignment;
  size_t rounded = (bytes + align - 1) / align * align;
  if (rounded == 0) rounded = align;
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  return p;
}

void CpuBackend::free_bytes(void* p) { std::free(p); }

// Big buffers (the per-step gradient zeroing) are cleared by all threads in fixed slices: one
// core's memset does not saturate the memory bandwidth.
void CpuBackend::zero(void* p, size_t bytes) {
  constexpr size_t kSlice = size_t(256) << 10;
  const long long slices = (long long)((bytes + kSlice - 1) / kSlice);
#pragma omp parallel for schedule(static) if (slices >= 8)
  for (long long i = 0; i < slices; ++i) {
    const size_t begin = size_t(i) * kSlice;
    std::memset(static_cast<char*>(p) + begin, 0, std::min(kSlice, bytes - begin));
  }
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
