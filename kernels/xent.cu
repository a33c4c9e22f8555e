// Softmax cross-entropy over rows of logits [M, V]; one block per row.
// losses = logsumexp(row) - row[target] (same value as -log softmax[target], computed without
// taking the log of a rounded probability); probs saved for backward; pred = argmax with ties
// resolved to the lowest index. A target outside [0, V) marks an ignored row: loss 0 and no
// gradient (callers normally pass labelled rows only).
#include <cfloat>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kXentThreads = 256;

__global__ void xent_fwd(float* losses, float* probs, int* pred, const float* logits,
                         const int* targets, int M, int V) {
  __shared__ float s_val[kXentThreads];
  __shared__ int s_idx[kXentThreads];
  __shared__ float s_red[32];
  int row = blockIdx.x;
  if (row >= M) return;
  const float* x = logits + size_t(row) * V;
  // max and argmax (lowest index among equal maxima)
  float best = -FLT_MAX;
  int best_i = V;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    float v = x[i];
    if (v > best) { best = v; best_i = i; }  // i increases, so ties keep the lowest
  }
  s_val[threadIdx.x] = best;
  s_idx[threadIdx.x] = best_i;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      float ov = s_val[threadIdx.x + stride];
      int oi = s_idx[threadIdx.x + stride];
      if (ov > s_val[threadIdx.x] || (ov == s_val[threadIdx.x] && oi < s_idx[threadIdx.x])) {
        s_val[threadIdx.x] = ov;
        s_idx[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  float mx = s_val[0];
  int amax = s_idx[0];
  float se = 0.f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) se += expf(x[i] - mx);
  se = block_sum(se, s_red);
  float inv = 1.f / se;
  float* p = probs + size_t(row) * V;
  for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = expf(x[i] - mx) * inv;
  if (threadIdx.x == 0) {
    int tgt = targets[row];
    losses[row] = (tgt >= 0 && tgt < V) ? (logf(se) + mx - x[tgt]) : 0.f;
    if (pred) pred[row] = amax;
  }
}

// dlogits (+)= (probs - onehot(target)) * scale; dlogits may be probs when overwriting (each
// element is read and then written by the same thread).
__global__ void xent_bwd(float* dlogits, const float* probs, const int* targets, float scale, int M,
                         int V, bool acc) {
  size_t n = size_t(M) * V;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    int row = int(i / V), col = int(i % V);
    int tgt = targets[row];
    if (tgt < 0 || tgt >= V) continue;
    store_grad(&dlogits[i], (probs[i] - (col == tgt ? 1.f : 0.f)) * scale, acc);
  }
}

}  // namespace

void CudaBackend::xent_forward(float* losses, float* probs, int* pred, const float* logits,
                               const int* targets, int M, int V) {
  if (M <= 0) return;
  xent_fwd<<<M, kXentThreads>>>(losses, probs, pred, logits, targets, M, V);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::xent_backward(float* dlogits, const float* probs, const int* targets,
                                float dloss_scale, int M, int V, bool accumulate) {
  size_t n = size_t(M) * V;
  if (!n || !dlogits) return;
  xent_bwd<<<blocks_for(n), kThreads>>>(dlogits, probs, targets, dloss_scale, M, V, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
