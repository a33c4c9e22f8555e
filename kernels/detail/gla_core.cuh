#pragma once
// The chunked linear-recurrence core shared by GLA and SSD (SSD is GLA with q = C, k = dt B,
// v = x and a decay that is the same for every state row: gk = dt A).
//   Per (b, h): S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t,  o_t = scale q_t S_t,  S_0 = 0.
//   q, k, gk [B, T, H, K]; v, o [B, T, H, V]; state [B, H, K, V].
#include "kernels/cuda_backend.h"

namespace statex::cuda {

// o = ...; final_state may be nullptr.
void gla_core_forward(CudaBackend& be, float* o, float* final_state, const float* q,
                      const float* k, const float* v, const float* gk, int B, int T, int H, int K,
                      int V, float scale, int chunk);

// Accumulates into dq, dk, dv, dgk (each may be nullptr); dfinal may be nullptr.
// Uses CudaBackend workspace slots 0, 1 and 2.
void gla_core_backward(CudaBackend& be, float* dq, float* dk, float* dv, float* dgk,
                       const float* dout, const float* dfinal, const float* q, const float* k,
                       const float* v, const float* gk, int B, int T, int H, int K, int V,
                       float scale, int chunk, bool accumulate);  // dq, dk, dv, dgk: += or =

}  // namespace statex::cuda
