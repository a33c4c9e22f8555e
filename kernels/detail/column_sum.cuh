#pragma once
// Deterministic column reduction used by every parameter gradient that sums over rows
// (bias, norm weights, conv taps, dt_bias, D): out[c] += sum_r f(r, c) for r < rows, c < cols.
//
// Two passes, no atomics: pass 1 splits the rows into `splits` slabs and writes one partial sum
// per (slab, column) into a workspace; pass 2 adds the partials in slab order. So results are
// bit-identical run to run. Block: 32 columns x 16 row-lanes, the row-lanes combined in shared
// memory in a fixed order.
#include <algorithm>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex::cuda {

constexpr int kColumnSumSlot = 9;  // CudaBackend workspace slot reserved for the partials

template <class F>
__global__ void column_sum_partial_kernel(float* partial, int rows, int cols, int rows_per_split,
                                          F f) {
  __shared__ float buf[16][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  int split = blockIdx.y;
  int r0 = split * rows_per_split;
  int r1 = min(rows, r0 + rows_per_split);
  float acc = 0.f;
  if (c < cols) {
    for (int r = r0 + threadIdx.y; r < r1; r += 16) acc += f(r, c);
  }
  buf[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float s = 0.f;
    for (int y = 0; y < 16; ++y) s += buf[y][threadIdx.x];
    partial[size_t(split) * cols + c] = s;
  }
}

__global__ void column_sum_finish_kernel(float* out, const float* partial, int splits, int cols);

// out may be nullptr (gradient not requested): then nothing runs.
template <class F>
void column_sum(CudaBackend& be, float* out, int rows, int cols, F f) {
  if (!out || cols <= 0) return;
  if (rows <= 0) return;
  int col_blocks = (cols + 31) / 32;
  // Enough slabs to give the GPU ~2 blocks per SM, but each slab at least 64 rows.
  int splits = (2 * be.sm_count() + col_blocks - 1) / col_blocks;
  splits = std::max(1, std::min(splits, (rows + 63) / 64));
  int rows_per_split = (rows + splits - 1) / splits;
  splits = (rows + rows_per_split - 1) / rows_per_split;
  float* partial = be.workspace(kColumnSumSlot, size_t(splits) * cols);
  column_sum_partial_kernel<<<dim3(col_blocks, splits), dim3(32, 16)>>>(partial, rows, cols,
                                                                       rows_per_split, f);
  CUDA_CHECK_LAUNCH();
  column_sum_finish_kernel<<<blocks_for(cols), kThreads>>>(out, partial, splits, cols);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex::cuda
