// Linear layer on a hand-written tiled fp32 GEMM (no cuBLAS).
//
// One kernel template computes C[M, N] (+)= opA(A)[M, K] · opB(B)[K, N] with
//   opA(m, k) = TA ? A[k * lda + m] : A[m * lda + k],  opB(k, n) = TB ? B[n * ldb + k] : B[k * ldb + n]
// The three linear products are its three layouts:
//   forward   out  [N, OC]  = inp [N, C] · W[OC, C]^T      (TA = 0, TB = 1)
//   backward  dinp [N, C]  += dout[N, OC] · W[OC, C]       (TA = 0, TB = 0)
//   backward  dW  [OC, C]  += dout[N, OC]^T · inp [N, C]   (TA = 1, TB = 0)
// Tiling: a block of 16x16 threads owns a (16 TM) x (16 TN) tile of C; each step stages a
// BK-deep slab of A and B in shared memory (loads coalesced along the contiguous dimension of
// each layout), and each thread accumulates TM x TN outputs in registers (rows ty + 16 i,
// columns tx + 16 j, so shared-memory reads of B are conflict-free and reads of A broadcast).
// Split-K: when the output has too few tiles to fill the GPU (dW with a long N), the K range is
// split over gridDim.z; partial tiles go to a workspace and a second kernel adds them in a
// fixed order, so the result is deterministic.
#include <algorithm>

#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kGemmWorkspaceSlot = 8;

template <int TM, int TN, int BK, bool TA, bool TB>
__global__ void __launch_bounds__(256)
    gemm_kernel(int M, int N, int K, const float* __restrict__ A, int lda,
                const float* __restrict__ B, int ldb, float* __restrict__ C, int ldc,
                const float* __restrict__ bias, bool accumulate, int k_per_split,
                float* __restrict__ partial) {
  constexpr int BM = 16 * TM, BN = 16 * TN;
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int k_begin = blockIdx.z * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    // Stage A slab: As[k][m] = opA(m0 + m, k0 + k), zero outside the matrix / split range.
#pragma unroll
    for (int e = tid; e < BM * BK; e += 256) {
      int m, k;
      if (TA) { k = e / BM; m = e % BM; }  // A is [K, M]: consecutive threads walk m
      else    { m = e / BK; k = e % BK; }  // A is [M, K]: consecutive threads walk k
      int gm = m0 + m, gk = k0 + k;
      float v = 0.f;
      if (gm < M && gk < k_end) v = TA ? A[size_t(gk) * lda + gm] : A[size_t(gm) * lda + gk];
      As[k][m] = v;
    }
    // Stage B slab: Bs[k][n] = opB(k0 + k, n0 + n).
#pragma unroll
    for (int e = tid; e < BN * BK; e += 256) {
      int n, k;
      if (TB) { n = e / BK; k = e % BK; }  // B is [N, K]: walk k
      else    { k = e / BN; n = e % BN; }  // B is [K, N]: walk n
      int gn = n0 + n, gk = k0 + k;
      float v = 0.f;
      if (gn < N && gk < k_end) v = TB ? B[size_t(gn) * ldb + gk] : B[size_t(gk) * ldb + gn];
      Bs[k][n] = v;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // before the next slab overwrites As / Bs
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    int m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      int n = n0 + tx + 16 * j;
      if (n >= N) continue;
      if (partial) {
        partial[(size_t(blockIdx.z) * M + m) * N + n] = acc[i][j];
      } else {
        float v = acc[i][j];
        if (bias) v += bias[n];
        float* c = C + size_t(m) * ldc + n;
        *c = accumulate ? *c + v : v;
      }
    }
  }
}

// C (+)= sum_s partial[s] (+ bias), in split order.
__global__ void splitk_reduce(float* C, int ldc, const float* partial, int splits, int M, int N,
                              const float* bias, bool accumulate) {
  size_t n_el = size_t(M) * N;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n_el;
       i += size_t(gridDim.x) * blockDim.x) {
    int m = int(i / N), n = int(i % N);
    float v = 0.f;
    for (int s = 0; s < splits; ++s) v += partial[size_t(s) * n_el + i];
    if (bias) v += bias[n];
    float* c = C + size_t(m) * ldc + n;
    *c = accumulate ? *c + v : v;
  }
}

template <int TM, int TN, bool TA, bool TB>
void launch_gemm(CudaBackend& be, int M, int N, int K, const float* A, int lda, const float* B,
                 int ldb, float* C, int ldc, const float* bias, bool accumulate) {
  constexpr int BM = 16 * TM, BN = 16 * TN, BK = 16;
  dim3 grid((N + BN - 1) / BN, (M + BM - 1) / BM, 1);
  int tiles = int(grid.x * grid.y);
  int target = 2 * be.sm_count();
  int splits = 1;
  if (tiles < target && K >= 512) splits = std::min({(target + tiles - 1) / tiles, K / 256, 16});
  int k_per_split = K;
  if (splits > 1) {
    k_per_split = ((K + splits - 1) / splits + BK - 1) / BK * BK;  // a multiple of BK
    splits = (K + k_per_split - 1) / k_per_split;
  }
  grid.z = splits;
  if (splits == 1) {
    gemm_kernel<TM, TN, BK, TA, TB><<<grid, 256>>>(M, N, K, A, lda, B, ldb, C, ldc, bias,
                                                   accumulate, K, nullptr);
    CUDA_CHECK_LAUNCH();
    return;
  }
  float* partial = be.workspace(kGemmWorkspaceSlot, size_t(splits) * M * N);
  gemm_kernel<TM, TN, BK, TA, TB><<<grid, 256>>>(M, N, K, A, lda, B, ldb, C, ldc, nullptr, false,
                                                 k_per_split, partial);
  CUDA_CHECK_LAUNCH();
  splitk_reduce<<<blocks_for(size_t(M) * N), kThreads>>>(C, ldc, partial, splits, M, N, bias,
                                                         accumulate);
  CUDA_CHECK_LAUNCH();
}

// Big outputs get 128x128 tiles (8x8 per thread); small ones 64x64 so more SMs have work.
template <bool TA, bool TB>
void gemm(CudaBackend& be, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
          float* C, int ldc, const float* bias, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty product: C = bias (or unchanged when accumulating)
    if (!accumulate) {
      splitk_reduce<<<blocks_for(size_t(M) * N), kThreads>>>(C, ldc, nullptr, 0, M, N, bias,
                                                             false);
      CUDA_CHECK_LAUNCH();
    }
    return;
  }
  long long tiles128 = (long long)((M + 127) / 128) * ((N + 127) / 128);
  if (tiles128 >= be.sm_count())
    launch_gemm<8, 8, TA, TB>(be, M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate);
  else
    launch_gemm<4, 4, TA, TB>(be, M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate);
}

struct BiasGrad {
  const float* dout;
  int OC;
  __device__ float operator()(int r, int c) const { return dout[size_t(r) * OC + c]; }
};

}  // namespace

void CudaBackend::linear_forward(float* out, const float* inp, const float* weight,
                                 const float* bias, int N, int C, int OC) {
  gemm<false, true>(*this, N, OC, C, inp, C, weight, C, out, OC, bias, false);
}

void CudaBackend::linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, int N, int C, int OC,
                                  bool accumulate) {
  if (dinp) gemm<false, false>(*this, N, C, OC, dout, OC, weight, C, dinp, C, nullptr, accumulate);
  if (dweight) gemm<true, false>(*this, OC, C, N, dout, OC, inp, C, dweight, C, nullptr, true);
  column_sum(*this, dbias, N, OC, BiasGrad{dout, OC});
}

}  // namespace statex
