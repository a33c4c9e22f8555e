#pragma once
// Small helpers shared by the kernels: launch sizing, warp/block reductions, math.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/detail/cuda_check.h"

// Grid-stride loop over [0, n): covers any n with a capped grid (see blocks_for).
#define GRID_STRIDE(i, n)                                                 \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); \
       i += size_t(gridDim.x) * blockDim.x)

namespace statex::cuda {

constexpr int kThreads = 256;  // default block size for elementwise kernels

inline unsigned blocks_for(size_t n, int threads = kThreads) {
  size_t b = (n + threads - 1) / threads;
  // Grid-stride loops cover anything beyond this many blocks.
  return static_cast<unsigned>(b < 65535u * 16u ? (b == 0 ? 1 : b) : 65535u * 16u);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the whole block; every thread gets the result. `scratch` holds >= 32 floats.
// Must be called by all threads of the block (contains __syncthreads).
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int nwarps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = (lane < nwarps) ? scratch[lane] : 0.f;
  return warp_sum(t);
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + expf(-x)); }

// An input gradient under the backward ops' `accumulate` flag (sim/core/backend.h): *p += v, or
// *p = v without reading *p (it may hold NaN).
__device__ __forceinline__ void store_grad(float* p, float v, bool acc) { *p = acc ? *p + v : v; }

}  // namespace statex::cuda
