// Gated delta rule on the GPU (contract: sim/core/backend.h gated_delta_*; CPU twin:
// sim/ops/cpu/gated_delta.cpp, reference: sim/ops/cpu/gated_delta_reference.cpp).
//
// Form: the per-timestep recurrence, one block per (batch, head), as fla's fused_recurrent
// kernel. Each column j of the state S [K, V] evolves on its own in the forward
//   u_j = a k^T S[:, j];  S[:, j] = a S[:, j] + k beta (v_j - u_j);  o_j = scale q^T S[:, j]
// so a thread owns whole columns and the forward needs no synchronisation beyond loading q_t
// and k_t. (The CPU's chunked WY form trades this for matrix products; here the state stays in
// shared memory and T sequential steps of K*V work each are cheap at the sizes of this tool.)
//
// Backward: a forward pass saves the state at every chunk start ("checkpoints", workspace slot
// 0); then, chunk by chunk in reverse, the chunk's states are recomputed into workspace slot 1
// and the steps are walked backwards with dS in shared memory (see gated_delta_reference.cpp
// for the step's gradient). Per step, column phases (threads own columns j) alternate with row
// phases (threads own rows i, for dq and dk); dbeta and dg are block sums (deterministic).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kBlock = 128;
constexpr int kCheckpointSlot = 0;  // [B*H*nchunks, K, V] chunk-start states
constexpr int kChunkStateSlot = 1;  // [B*H, chunk + 1, K, V] one chunk's states

struct Dims {
  int B, T, H, K, V, chunk, nchunks;
  float scale;
  __device__ size_t row(int b, int t, int h, int width) const {
    return ((size_t(b) * T + t) * H + h) * size_t(width);
  }
  __device__ size_t gate(int b, int t, int h) const { return (size_t(b) * T + t) * H + h; }
};

// Loads n floats into shared memory (all threads).
__device__ __forceinline__ void load(float* dst, const float* src, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
}

// smem: S [K * V], q_t [K], k_t [K].
__global__ void gd_forward_kernel(float* o, float* final_state, float* ckpt, const float* q,
                                  const float* k, const float* v, const float* g, const float* beta,
                                  Dims d) {
  extern __shared__ float sm[];
  const int K = d.K, V = d.V, bh = blockIdx.x, b = bh / d.H, h = bh % d.H;
  float* S = sm;
  float* qs = S + size_t(K) * V;
  float* ks = qs + K;
  for (int i = threadIdx.x; i < K * V; i += blockDim.x) S[i] = 0.f;
  for (int t = 0; t < d.T; ++t) {
    if (ckpt && t % d.chunk == 0) {
      float* c = ckpt + (size_t(bh) * d.nchunks + t / d.chunk) * K * V;
      for (int j = threadIdx.x; j < V; j += blockDim.x)  // own columns only
        for (int i = 0; i < K; ++i) c[i * V + j] = S[i * V + j];
    }
    __syncthreads();  // the previous step is done with qs / ks
    load(qs, q + d.row(b, t, h, K), K);
    load(ks, k + d.row(b, t, h, K), K);
    __syncthreads();
    const size_t gi = d.gate(b, t, h);
    const float a = expf(g[gi]), bt = beta[gi];
    const float* vt = v + d.row(b, t, h, V);
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
      float u = 0.f;
      for (int i = 0; i < K; ++i) u += ks[i] * S[i * V + j];
      const float w = bt * (vt[j] - a * u);
      float acc = 0.f;
      for (int i = 0; i < K; ++i) {
        const float s = a * S[i * V + j] + ks[i] * w;
        S[i * V + j] = s;
        acc += qs[i] * s;
      }
      if (o) o[d.row(b, t, h, V) + j] = d.scale * acc;
    }
  }
  if (final_state)
    for (int j = threadIdx.x; j < V; j += blockDim.x)
      for (int i = 0; i < K; ++i) final_state[size_t(bh) * K * V + i * V + j] = S[i * V + j];
}

// smem: dS [K, V + 1] (padded: row phases read rows), q_t, k_t [K], v_t, do_t, w, du [V],
// reduction scratch [32].
__global__ void gd_backward_kernel(float* dq, float* dk, float* dv, float* dg, float* dbeta,
                                   const float* dout, const float* dfinal, const float* q,
                                   const float* k, const float* v, const float* g,
                                   const float* beta, const float* ckpt, float* states, Dims d,
                                   bool acc) {
  extern __shared__ float sm[];
  const int K = d.K, V = d.V, ld = V + 1, bh = blockIdx.x, b = bh / d.H, h = bh % d.H;
  const size_t KV = size_t(K) * V;
  float* dS = sm;
  float* qs = dS + size_t(K) * ld;
  float* ks = qs + K;
  float* vs = ks + K;
  float* dos = vs + V;
  float* ws = dos + V;
  float* dus = ws + V;
  float* red = dus + V;
  float* st = states + size_t(bh) * (d.chunk + 1) * KV;  // [chunk + 1, K, V]
  for (int i = threadIdx.x; i < K * V; i += blockDim.x)
    dS[(i / V) * ld + i % V] = dfinal ? dfinal[size_t(bh) * KV + i] : 0.f;
  for (int c = d.nchunks - 1; c >= 0; --c) {
    const int t0 = c * d.chunk, L = min(d.chunk, d.T - t0);
    // Recompute the chunk's states st[0..L] (threads own columns).
    const float* c0 = ckpt + (size_t(bh) * d.nchunks + c) * KV;
    for (int j = threadIdx.x; j < V; j += blockDim.x)
      for (int i = 0; i < K; ++i) st[i * V + j] = c0[i * V + j];
    for (int s = 0; s < L; ++s) {
      __syncthreads();
      load(ks, k + d.row(b, t0 + s, h, K), K);
      __syncthreads();
      const size_t gi = d.gate(b, t0 + s, h);
      const float a = expf(g[gi]), bt = beta[gi];
      const float* vt = v + d.row(b, t0 + s, h, V);
      const float* Sp = st + s * KV;
      float* Sn = st + (s + 1) * KV;
      for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float u = 0.f;
        for (int i = 0; i < K; ++i) u += ks[i] * Sp[i * V + j];
        const float w = bt * (vt[j] - a * u);
        for (int i = 0; i < K; ++i) Sn[i * V + j] = a * Sp[i * V + j] + ks[i] * w;
      }
    }
    // Walk the chunk's steps backwards.
    for (int s = L - 1; s >= 0; --s) {
      const int t = t0 + s;
      const size_t gi = d.gate(b, t, h);
      const float a = expf(g[gi]), bt = beta[gi];
      const float* Sp = st + s * KV;
      const float* St = st + (s + 1) * KV;
      __syncthreads();  // st writes (recompute) and the last step's shared reads are done
      load(qs, q + d.row(b, t, h, K), K);
      load(ks, k + d.row(b, t, h, K), K);
      load(vs, v + d.row(b, t, h, V), V);
      load(dos, dout + d.row(b, t, h, V), V);
      __syncthreads();
      // Rows: dq_i = scale sum_j S_t[i, j] do_j.
      if (dq)
        for (int i = threadIdx.x; i < K; i += blockDim.x) {
          float x = 0.f;
          for (int j = 0; j < V; ++j) x += St[i * V + j] * dos[j];
          store_grad(&dq[d.row(b, t, h, K) + i], d.scale * x, acc);
        }
      // Columns: dS += scale q do^T; dw = dS^T k; dv, dbeta, du = -beta dw.
      float db_part = 0.f;
      for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float u = 0.f;
        for (int i = 0; i < K; ++i) u += ks[i] * Sp[i * V + j];
        const float r = vs[j] - a * u;  // v_j - u_j (u of Sd = a S_{t-1})
        float dw = 0.f;
        for (int i = 0; i < K; ++i) {
          const float x = dS[i * ld + j] + d.scale * qs[i] * dos[j];
          dS[i * ld + j] = x;
          dw += x * ks[i];
        }
        if (dv) store_grad(&dv[d.row(b, t, h, V) + j], bt * dw, acc);
        db_part += dw * r;
        ws[j] = bt * r;
        dus[j] = -bt * dw;
      }
      __syncthreads();
      // Rows: dk_i = sum_j dS[i, j] w_j + a sum_j S_{t-1}[i, j] du_j.
      if (dk)
        for (int i = threadIdx.x; i < K; i += blockDim.x) {
          float x = 0.f, y = 0.f;
          for (int j = 0; j < V; ++j) {
            x += dS[i * ld + j] * ws[j];
            y += Sp[i * V + j] * dus[j];
          }
          store_grad(&dk[d.row(b, t, h, K) + i], x + a * y, acc);
        }
      __syncthreads();  // the row phase has read dS
      // Columns: dSd = dS + k du^T; dg += <dSd, Sd>; dS_{t-1} = a dSd.
      float dg_part = 0.f;
      for (int j = threadIdx.x; j < V; j += blockDim.x)
        for (int i = 0; i < K; ++i) {
          const float sd = a * Sp[i * V + j];
          const float x = dS[i * ld + j] + ks[i] * dus[j];
          dg_part += x * sd;
          dS[i * ld + j] = a * x;
        }
      const float dg_sum = block_sum(dg_part, red);
      const float db_sum = block_sum(db_part, red);
      if (threadIdx.x == 0) {
        if (dg) store_grad(&dg[gi], dg_sum, acc);
        if (dbeta) store_grad(&dbeta[gi], db_sum, acc);
      }
    }
  }
}

// Dynamic shared memory for a kernel, opting in above 48 KiB; clear error when it cannot fit.
void set_smem(const void* kernel, size_t bytes, int optin, int K, int V) {
  if (bytes > size_t(optin))
    throw std::runtime_error("gated_delta (CUDA): head dims K=" + std::to_string(K) +
                             ", V=" + std::to_string(V) + " need " + std::to_string(bytes) +
                             " bytes of shared memory; this GPU allows " + std::to_string(optin) +
                             " (use more heads or smaller model.expand_k / model.expand_v)");
  if (bytes > 48 * 1024)
    CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

Dims make_dims(int B, int T, int H, int K, int V, int chunk, float scale) {
  chunk = std::max(1, chunk);
  return Dims{B, T, H, K, V, chunk, (T + chunk - 1) / chunk, scale};
}

}  // namespace

void CudaBackend::gated_delta_forward(float* o, float* final_state, const float* q, const float* k,
                                      const float* v, const float* g, const float* beta, int B,
                                      int T, int H, int K, int V, float scale, int chunk) {
  if (B * H == 0 || T == 0) return;
  const Dims d = make_dims(B, T, H, K, V, chunk, scale);
  const size_t smem = (size_t(K) * V + 2 * K) * sizeof(float);
  set_smem(reinterpret_cast<const void*>(gd_forward_kernel), smem, max_smem_optin(), K, V);
  gd_forward_kernel<<<B * H, kBlock, smem>>>(o, final_state, nullptr, q, k, v, g, beta, d);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::gated_delta_backward(float* dq, float* dk, float* dv, float* dg, float* dbeta,
                                       const float* dout, const float* dfinal_state, const float* q,
                                       const float* k, const float* v, const float* g,
                                       const float* beta, int B, int T, int H, int K, int V,
                                       float scale, int chunk, bool accumulate) {
  if (B * H == 0 || T == 0) return;
  const Dims d = make_dims(B, T, H, K, V, chunk, scale);
  const size_t KV = size_t(K) * V;
  float* ckpt = workspace(kCheckpointSlot, size_t(B) * H * d.nchunks * KV);
  float* states = workspace(kChunkStateSlot, size_t(B) * H * (d.chunk + 1) * KV);
  const size_t fwd_smem = (KV + 2 * K) * sizeof(float);
  set_smem(reinterpret_cast<const void*>(gd_forward_kernel), fwd_smem, max_smem_optin(), K, V);
  gd_forward_kernel<<<B * H, kBlock, fwd_smem>>>(nullptr, nullptr, ckpt, q, k, v, g, beta, d);
  CUDA_CHECK_LAUNCH();
  const size_t bwd_smem = (size_t(K) * (V + 1) + 2 * K + 4 * V + 32) * sizeof(float);
  set_smem(reinterpret_cast<const void*>(gd_backward_kernel), bwd_smem, max_smem_optin(), K, V);
  gd_backward_kernel<<<B * H, kBlock, bwd_smem>>>(dq, dk, dv, dg, dbeta, dout, dfinal_state, q, k,
                                                  v, g, beta, ckpt, states, d, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
