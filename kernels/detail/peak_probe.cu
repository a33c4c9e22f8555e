// Measured peaks of the card, for the "% of peak" column of `statex verify --bench`: the nominal
// figures from the device attributes assume the boost clock and ideal DRAM timing, which no
// kernel sustains. Both probes are best-of-N wall times on CUDA events.
#include <algorithm>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {

namespace {

constexpr int kFmaChains = 8;     // independent chains per thread hide the FMA latency
constexpr int kFmaIters = 4096;   // per chain

// Each thread runs kFmaChains dependent FMA chains; the conditional store keeps the compiler
// from removing them (the condition is never true for the inputs we pass).
__global__ void fma_probe_kernel(float* sink, float seed) {
  float v[kFmaChains];
#pragma unroll
  for (int c = 0; c < kFmaChains; ++c) v[c] = seed + threadIdx.x + c;
  for (int i = 0; i < kFmaIters; ++i) {
#pragma unroll
    for (int c = 0; c < kFmaChains; ++c) v[c] = fmaf(v[c], 0.999999f, 1e-7f);
  }
  float s = 0;
#pragma unroll
  for (int c = 0; c < kFmaChains; ++c) s += v[c];
  if (s == -1.0f) sink[threadIdx.x] = s;
}

// Grid-stride float4 copy: n4 float4 elements read and written.
__global__ void copy_probe_kernel(float4* __restrict__ dst, const float4* __restrict__ src,
                                  size_t n4) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n4;
       i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

// Best of `reps` timings of launch(), in ms.
template <class Launch>
float best_ms(int reps, Launch launch) {
  cudaEvent_t t0, t1;
  CUDA_CHECK(cudaEventCreate(&t0));
  CUDA_CHECK(cudaEventCreate(&t1));
  launch();  // warm-up (clocks up, code loaded)
  float best = 1e30f;
  for (int r = 0; r < reps; ++r) {
    CUDA_CHECK(cudaEventRecord(t0));
    launch();
    CUDA_CHECK(cudaEventRecord(t1));
    CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    best = std::min(best, ms);
  }
  CUDA_CHECK(cudaEventDestroy(t0));
  CUDA_CHECK(cudaEventDestroy(t1));
  return best;
}

}  // namespace

double CudaBackend::measured_fp32_tflops() {
  const int threads = 256, blocks = sm_count_ * 8;  // 2,048 threads per SM: full occupancy
  float* sink = static_cast<float*>(malloc_bytes(threads * sizeof(float)));
  float ms = best_ms(5, [&] {
    fma_probe_kernel<<<blocks, threads>>>(sink, 1.0f);
    CUDA_CHECK_LAUNCH();
  });
  free_bytes(sink);
  double flops = 2.0 * kFmaChains * kFmaIters * double(blocks) * threads;
  return flops / (ms * 1e-3) / 1e12;
}

double CudaBackend::measured_dram_gbps() {
  const size_t bytes = size_t(1) << 30;  // 1 GiB each way: far beyond the 50 MB L2
  auto* src = static_cast<float4*>(malloc_bytes(bytes));
  auto* dst = static_cast<float4*>(malloc_bytes(bytes));
  CUDA_CHECK(cudaMemset(src, 0, bytes));
  const size_t n4 = bytes / sizeof(float4);
  float ms = best_ms(5, [&] {
    copy_probe_kernel<<<sm_count_ * 4, 512>>>(dst, src, n4);
    CUDA_CHECK_LAUNCH();
  });
  free_bytes(src);
  free_bytes(dst);
  return 2.0 * double(bytes) / (ms * 1e-3) / 1e9;  // read + write
}

}  // namespace statex
