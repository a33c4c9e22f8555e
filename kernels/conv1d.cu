// Causal depthwise conv1d: out[b,t,c] = bias[c] + sum_{j<W} w[c,j] inp[b, t-(W-1)+j, c]
// (zero padded on the left). inp/out [B, T, C], weight [C, W], bias [C] or nullptr.
#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/conv1d_kernels.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

// dinp[b,t,c] (+)= sum_j w[c,j] dout[b, t+(W-1)-j, c]  (output positions that read inp[b,t,c])
__global__ void conv1d_bwd_inp(float* dinp, const float* dout, const float* weight, int B, int T,
                               int C, int W, bool acc_into) {
  size_t n = size_t(B) * T * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    int c = int(i % C);
    size_t bt = i / C;
    int t = int(bt % T);
    size_t row0 = bt - t;
    float acc = 0.f;
    for (int j = 0; j < W; ++j) {
      int to = t + (W - 1) - j;
      if (to < T) acc += weight[size_t(c) * W + j] * dout[(row0 + to) * C + c];
    }
    store_grad(&dinp[i], acc, acc_into);
  }
}

struct ConvWeightGrad {  // column q = c * W + j: sum_{b,t} dout[b,t,c] inp[b,t-(W-1)+j,c]
  const float *dout, *inp;
  int T, C, W;
  __device__ float operator()(int r, int q) const {
    int c = q / W, j = q % W;
    int t = r % T;
    int ts = t - (W - 1) + j;
    if (ts < 0) return 0.f;
    return dout[size_t(r) * C + c] * inp[size_t(r - t + ts) * C + c];
  }
};

struct ConvBiasGrad {
  const float* dout;
  int C;
  __device__ float operator()(int r, int c) const { return dout[size_t(r) * C + c]; }
};

}  // namespace

void CudaBackend::conv1d_forward(float* out, const float* inp, const float* weight,
                                 const float* bias, int B, int T, int C, int W) {
  size_t n = size_t(B) * T * C;
  if (!n) return;
  conv1d_fwd<false><<<blocks_for(n), kThreads>>>(out, inp, weight, bias, B, T, C, W);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::conv1d_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, int B, int T, int C, int W,
                                  bool accumulate) {
  size_t n = size_t(B) * T * C;
  if (!n) return;
  if (dinp) {
    conv1d_bwd_inp<<<blocks_for(n), kThreads>>>(dinp, dout, weight, B, T, C, W, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, dweight, B * T, C * W, ConvWeightGrad{dout, inp, T, C, W});
  column_sum(*this, dbias, B * T, C, ConvBiasGrad{dout, C});
}

}  // namespace statex
