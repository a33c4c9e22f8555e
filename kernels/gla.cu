// GLA chunked scan, forward and backward (also the core of SSD, see gla_core.cuh).
//
// Work split: one block per (b, h, tile of BV value columns). The recurrence is independent
// across value columns, so each block owns S[:, tile] (K x BV, in shared memory) and walks the
// chunks of its sequence in order. Within a chunk of Lc <= L steps, with G_t the cumulative
// log decay from the chunk start (G <= 0, so every exp below is of a non-positive number and
// cannot overflow):
//   o_t   = scale ( (q_t * exp(G_t)) S_start  +  sum_{s<=t} A[t][s] v_s )
//   A[t][s] = sum_k q_t[k] k_s[k] exp(G_t[k] - G_s[k])                      (s <= t)
//   S_end = exp(G_last) * S_start + sum_s (k_s * exp(G_last - G_s))^T v_s
// The chunk length is only a performance choice: the result is the same recurrence, so L is
// picked to fit shared memory (<= the caller's chunk).
//
// Backward, per block: phase 1 walks forward recomputing S to get dq (needs S_t); phase 2 walks
// backward with dH = dL/dS_end of the chunk to get dk, dv and the next dH:
//   dq_t  = scale ( exp(G_t) * (S_start do_t)  +  sum_{s<=t} (do_t . v_s) k_s exp(G_t - G_s) )
//   dk_t  = exp(G_last - G_t) * (dH v_t)  +  scale sum_{r>=t} (do_r . v_t) q_r exp(G_r - G_t)
//   dv_t  = (k_t exp(G_last - G_t)) dH  +  scale sum_{r>=t} A[r][t] do_r
//   dH   <- exp(G_last) * dH + scale sum_r (q_r exp(G_r))^T do_r
// dq and dk are sums over value columns, so each tile writes its own partial (workspace) and a
// finishing kernel adds the tiles in a fixed order (deterministic, no atomics). The decay
// gradient follows from G entering every term as exp(G_query - G_key):
//   dL/dG_t = q_t dq_t - k_t dk_t  (+ sum_v dfinal * S_T at t = T),  dgk_t = sum_{t'>=t} dL/dG_t'
// which the finishing kernel computes as a reverse cumulative sum per (b, h, k).
// Accurate expf (not __expf) throughout: correctness first, the verify tolerances assume it.
// (Precomputing q exp(G) and k exp(G_last - G) in extra shared arrays was tried: fewer expf, but
// the larger footprint halves the resident blocks per SM and it measured ~20% slower on H200.)
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"
#include "kernels/detail/gla_core.cuh"

namespace statex {
namespace cuda {

namespace {

constexpr int kBV = 32;          // value columns per block
constexpr int kScanThreads = 256;

struct Smem {  // float offsets into dynamic shared memory; row strides padded by one
  int L, K, KP, BVP, LP;
  size_t q, k, g, v, dout, a, dv, s, total;
};

Smem smem_layout(int L, int K, bool backward) {
  Smem m;
  m.L = L;
  m.K = K;
  m.KP = K + 1;
  m.BVP = kBV + 1;
  m.LP = L + 1;
  size_t off = 0;
  m.q = off; off += size_t(L) * m.KP;
  m.k = off; off += size_t(L) * m.KP;
  m.g = off; off += size_t(L) * m.KP;
  m.v = off; off += size_t(L) * m.BVP;
  m.dout = off; if (backward) off += size_t(L) * m.BVP;
  m.a = off; off += size_t(L) * m.LP;
  m.dv = off; if (backward) off += size_t(L) * m.LP;
  m.s = off; off += size_t(K) * m.BVP;
  m.total = off;
  return m;
}

// Largest chunk <= requested (and <= 64) whose working set fits the device's shared memory.
Smem pick_layout(const CudaBackend& be, int K, int chunk, bool backward) {
  int L = chunk > 0 ? std::min(chunk, 64) : 64;
  while (true) {
    Smem m = smem_layout(L, K, backward);
    if (m.total * sizeof(float) <= size_t(be.max_smem_optin())) return m;
    if (L == 1)
      throw std::runtime_error("gla/ssd CUDA kernel: head dim K=" + std::to_string(K) +
                               " does not fit in shared memory");
    L = std::max(1, L / 2);
  }
}

__device__ __forceinline__ size_t qk_index(int b, int t, int h, int kk, int T, int H, int K) {
  return ((size_t(b) * T + t) * H + h) * K + kk;
}

// Loads rows [t0, t0+Lc) of q, k, gk (K wide) and of v (and dout) columns [v0, v0+BV) into
// shared memory (zero beyond V), then turns g into the in-chunk cumulative sum.
__device__ void load_chunk(const Smem& m, float* sm, const float* q, const float* k,
                           const float* v, const float* gk, const float* dout, int b, int h,
                           int t0, int Lc, int v0, int T, int H, int K, int V) {
  for (int e = threadIdx.x; e < Lc * K; e += blockDim.x) {
    int t = e / K, kk = e % K;
    size_t gi = qk_index(b, t0 + t, h, kk, T, H, K);
    sm[m.q + t * m.KP + kk] = q[gi];
    sm[m.k + t * m.KP + kk] = k[gi];
    sm[m.g + t * m.KP + kk] = gk[gi];
  }
  for (int e = threadIdx.x; e < Lc * kBV; e += blockDim.x) {
    int t = e / kBV, j = e % kBV, vv = v0 + j;
    size_t gi = qk_index(b, t0 + t, h, vv, T, H, V);
    bool in = vv < V;
    sm[m.v + t * m.BVP + j] = in ? v[gi] : 0.f;
    if (dout) sm[m.dout + t * m.BVP + j] = in ? dout[gi] : 0.f;
  }
  __syncthreads();
  for (int kk = threadIdx.x; kk < K; kk += blockDim.x) {
    float run = 0.f;
    for (int t = 0; t < Lc; ++t) {
      run += sm[m.g + t * m.KP + kk];
      sm[m.g + t * m.KP + kk] = run;
    }
  }
  __syncthreads();
}

// A[t][s] = scale * sum_k q_t k_s exp(G_t - G_s) for s <= t, else 0.
__device__ void compute_attention(const Smem& m, float* sm, int Lc, int K, float scale) {
  for (int e = threadIdx.x; e < Lc * Lc; e += blockDim.x) {
    int t = e / Lc, s = e % Lc;
    float acc = 0.f;
    if (s <= t) {
      const float* qt = sm + m.q + t * m.KP;
      const float* ks = sm + m.k + s * m.KP;
      const float* gt = sm + m.g + t * m.KP;
      const float* gs = sm + m.g + s * m.KP;
      for (int kk = 0; kk < K; ++kk) acc += qt[kk] * ks[kk] * expf(gt[kk] - gs[kk]);
    }
    sm[m.a + t * m.LP + s] = scale * acc;
  }
}

// S = exp(G_last) S + sum_s (k_s exp(G_last - G_s))^T v_s
__device__ void advance_state(const Smem& m, float* sm, int Lc, int K) {
  for (int e = threadIdx.x; e < K * kBV; e += blockDim.x) {
    int kk = e / kBV, j = e % kBV;
    float glast = sm[m.g + (Lc - 1) * m.KP + kk];
    float acc = expf(glast) * sm[m.s + kk * m.BVP + j];
    for (int s = 0; s < Lc; ++s)
      acc += sm[m.k + s * m.KP + kk] * expf(glast - sm[m.g + s * m.KP + kk]) *
             sm[m.v + s * m.BVP + j];
    sm[m.s + kk * m.BVP + j] = acc;
  }
}

__global__ void gla_fwd_kernel(Smem m, float* o, float* final_state, const float* q,
                               const float* k, const float* v, const float* gk, int B, int T,
                               int H, int K, int V, float scale) {
  extern __shared__ float sm[];
  const int v0 = blockIdx.x * kBV;
  const int b = blockIdx.y / H, h = blockIdx.y % H;
  for (int e = threadIdx.x; e < K * kBV; e += blockDim.x) sm[m.s + (e / kBV) * m.BVP + e % kBV] = 0.f;
  __syncthreads();
  for (int t0 = 0; t0 < T; t0 += m.L) {
    const int Lc = min(m.L, T - t0);
    load_chunk(m, sm, q, k, v, gk, nullptr, b, h, t0, Lc, v0, T, H, K, V);
    compute_attention(m, sm, Lc, K, scale);
    __syncthreads();
    for (int e = threadIdx.x; e < Lc * kBV; e += blockDim.x) {
      int t = e / kBV, j = e % kBV, vv = v0 + j;
      if (vv >= V) continue;
      float inter = 0.f;
      for (int kk = 0; kk < K; ++kk)
        inter += sm[m.q + t * m.KP + kk] * expf(sm[m.g + t * m.KP + kk]) *
                 sm[m.s + kk * m.BVP + j];
      float intra = 0.f;
      for (int s = 0; s <= t; ++s) intra += sm[m.a + t * m.LP + s] * sm[m.v + s * m.BVP + j];
      o[qk_index(b, t0 + t, h, vv, T, H, V)] = scale * inter + intra;
    }
    __syncthreads();  // the output loop reads S
    advance_state(m, sm, Lc, K);
    __syncthreads();  // before the next chunk overwrites shared memory
  }
  if (final_state) {
    for (int e = threadIdx.x; e < K * kBV; e += blockDim.x) {
      int kk = e / kBV, j = e % kBV, vv = v0 + j;
      if (vv < V) final_state[((size_t(b) * H + h) * K + kk) * V + vv] = sm[m.s + kk * m.BVP + j];
    }
  }
}

// Partials: dq_part / dk_part [tiles][B, T, H, K], fterm_part [tiles][B, H, K].
__global__ void gla_bwd_kernel(Smem m, float* dv, float* dq_part, float* dk_part, float* fterm_part,
                               const float* dout, const float* dfinal, const float* q,
                               const float* k, const float* v, const float* gk, int B, int T, int H,
                               int K, int V, float scale, bool acc) {
  extern __shared__ float sm[];
  const int tile = blockIdx.x;
  const int v0 = tile * kBV;
  const int b = blockIdx.y / H, h = blockIdx.y % H;
  const size_t n_qk = size_t(B) * T * H * K;
  float* dq_t = dq_part + size_t(tile) * n_qk;
  float* dk_t = dk_part + size_t(tile) * n_qk;
  const size_t state0 = (size_t(b) * H + h) * K;  // row offset of this (b, h) in [B, H, K, *]

  // ---- phase 1: forward sweep, S in shared memory, dq per step ----
  for (int e = threadIdx.x; e < K * kBV; e += blockDim.x) sm[m.s + (e / kBV) * m.BVP + e % kBV] = 0.f;
  __syncthreads();
  for (int t0 = 0; t0 < T; t0 += m.L) {
    const int Lc = min(m.L, T - t0);
    load_chunk(m, sm, q, k, v, gk, dout, b, h, t0, Lc, v0, T, H, K, V);
    // DV[t][s] = do_t . v_s  (s <= t)
    for (int e = threadIdx.x; e < Lc * Lc; e += blockDim.x) {
      int t = e / Lc, s = e % Lc;
      float acc = 0.f;
      if (s <= t)
        for (int j = 0; j < kBV; ++j) acc += sm[m.dout + t * m.BVP + j] * sm[m.v + s * m.BVP + j];
      sm[m.dv + t * m.LP + s] = acc;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < Lc * K; e += blockDim.x) {
      int t = e / K, kk = e % K;
      float gt = sm[m.g + t * m.KP + kk];
      float inter = 0.f;
      for (int j = 0; j < kBV; ++j) inter += sm[m.dout + t * m.BVP + j] * sm[m.s + kk * m.BVP + j];
      float intra = 0.f;
      for (int s = 0; s <= t; ++s)
        intra += sm[m.dv + t * m.LP + s] * sm[m.k + s * m.KP + kk] * expf(gt - sm[m.g + s * m.KP + kk]);
      dq_t[qk_index(b, t0 + t, h, kk, T, H, K)] = scale * (expf(gt) * inter + intra);
    }
    __syncthreads();
    advance_state(m, sm, Lc, K);
    __syncthreads();
  }
  // final-state term of dL/dG_T, partial over this tile's columns
  for (int kk = threadIdx.x; kk < K; kk += blockDim.x) {
    float acc = 0.f;
    if (dfinal)
      for (int j = 0; j < kBV && v0 + j < V; ++j)
        acc += dfinal[(state0 + kk) * V + v0 + j] * sm[m.s + kk * m.BVP + j];
    fterm_part[size_t(tile) * B * H * K + state0 + kk] = acc;
  }
  __syncthreads();

  // ---- phase 2: backward sweep, dH = dL/dS at the end of the current chunk ----
  for (int e = threadIdx.x; e < K * kBV; e += blockDim.x) {
    int kk = e / kBV, j = e % kBV, vv = v0 + j;
    sm[m.s + kk * m.BVP + j] = (dfinal && vv < V) ? dfinal[(state0 + kk) * V + vv] : 0.f;
  }
  __syncthreads();
  const int n_chunks = (T + m.L - 1) / m.L;
  for (int c = n_chunks - 1; c >= 0; --c) {
    const int t0 = c * m.L;
    const int Lc = min(m.L, T - t0);
    load_chunk(m, sm, q, k, v, gk, dout, b, h, t0, Lc, v0, T, H, K, V);
    compute_attention(m, sm, Lc, K, scale);
    for (int e = threadIdx.x; e < Lc * Lc; e += blockDim.x) {
      int r = e / Lc, t = e % Lc;
      float acc = 0.f;
      if (t <= r)
        for (int j = 0; j < kBV; ++j) acc += sm[m.dout + r * m.BVP + j] * sm[m.v + t * m.BVP + j];
      sm[m.dv + r * m.LP + t] = acc;
    }
    __syncthreads();
    // dk (partial over this tile's value columns)
    for (int e = threadIdx.x; e < Lc * K; e += blockDim.x) {
      int t = e / K, kk = e % K;
      float gt = sm[m.g + t * m.KP + kk];
      float glast = sm[m.g + (Lc - 1) * m.KP + kk];
      float from_state = 0.f;
      for (int j = 0; j < kBV; ++j) from_state += sm[m.s + kk * m.BVP + j] * sm[m.v + t * m.BVP + j];
      float intra = 0.f;
      for (int r = t; r < Lc; ++r)
        intra += sm[m.dv + r * m.LP + t] * sm[m.q + r * m.KP + kk] * expf(sm[m.g + r * m.KP + kk] - gt);
      dk_t[qk_index(b, t0 + t, h, kk, T, H, K)] = expf(glast - gt) * from_state + scale * intra;
    }
    // dv (this tile owns its columns: written straight into the output, once per element)
    if (dv) {
      for (int e = threadIdx.x; e < Lc * kBV; e += blockDim.x) {
        int t = e / kBV, j = e % kBV, vv = v0 + j;
        if (vv >= V) continue;
        float from_state = 0.f;
        for (int kk = 0; kk < K; ++kk)
          from_state += sm[m.k + t * m.KP + kk] *
                        expf(sm[m.g + (Lc - 1) * m.KP + kk] - sm[m.g + t * m.KP + kk]) *
                        sm[m.s + kk * m.BVP + j];
        float intra = 0.f;
        for (int r = t; r < Lc; ++r) intra += sm[m.a + r * m.LP + t] * sm[m.dout + r * m.BVP + j];
        store_grad(&dv[qk_index(b, t0 + t, h, vv, T, H, V)], from_state + intra, acc);
      }
    }
    __syncthreads();  // dk and dv read dH
    for (int e = threadIdx.x; e < K * kBV; e += blockDim.x) {
      int kk = e / kBV, j = e % kBV;
      float acc = 0.f;
      for (int r = 0; r < Lc; ++r)
        acc += sm[m.q + r * m.KP + kk] * expf(sm[m.g + r * m.KP + kk]) * sm[m.dout + r * m.BVP + j];
      float glast = sm[m.g + (Lc - 1) * m.KP + kk];
      sm[m.s + kk * m.BVP + j] = expf(glast) * sm[m.s + kk * m.BVP + j] + scale * acc;
    }
    __syncthreads();
  }
}

// One thread per (b, h, k): add the tiles' partials, write (acc: add) dq / dk, and the reverse
// cumulative sum of q dq - k dk (+ final-state term) into dgk.
__global__ void gla_bwd_finish_kernel(float* dq, float* dk, float* dgk, const float* dq_part,
                                      const float* dk_part, const float* fterm_part, const float* q,
                                      const float* k, int tiles, int B, int T, int H, int K,
                                      bool acc_into) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= B * H * K) return;
  int kk = idx % K, bh = idx / K, h = bh % H, b = bh / H;
  const size_t n_qk = size_t(B) * T * H * K;
  // The reverse cumulative sum cancels (q dq - k dk terms of both signs): keep it in double.
  double acc = 0.0;
  for (int tile = 0; tile < tiles; ++tile) acc += fterm_part[size_t(tile) * B * H * K + idx];
  for (int t = T - 1; t >= 0; --t) {
    size_t i = qk_index(b, t, h, kk, T, H, K);
    float dqf = 0.f, dkf = 0.f;
    for (int tile = 0; tile < tiles; ++tile) {
      dqf += dq_part[size_t(tile) * n_qk + i];
      dkf += dk_part[size_t(tile) * n_qk + i];
    }
    acc += double(q[i]) * dqf - double(k[i]) * dkf;
    if (dgk) store_grad(&dgk[i], float(acc), acc_into);
    if (dq) store_grad(&dq[i], dqf, acc_into);
    if (dk) store_grad(&dk[i], dkf, acc_into);
  }
}

void set_smem(const void* kernel, size_t bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  int(bytes)));
}

}  // namespace

void gla_core_forward(CudaBackend& be, float* o, float* final_state, const float* q,
                      const float* k, const float* v, const float* gk, int B, int T, int H, int K,
                      int V, float scale, int chunk) {
  if (B <= 0 || H <= 0 || K <= 0 || V <= 0) return;
  if (T <= 0) {  // empty sequence: the final state is the zero initial state
    if (final_state) be.zero(final_state, size_t(B) * H * K * V * sizeof(float));
    return;
  }
  Smem m = pick_layout(be, K, chunk, false);
  size_t bytes = m.total * sizeof(float);
  set_smem(reinterpret_cast<const void*>(gla_fwd_kernel), bytes);
  dim3 grid((V + kBV - 1) / kBV, B * H);
  gla_fwd_kernel<<<grid, kScanThreads, bytes>>>(m, o, final_state, q, k, v, gk, B, T, H, K, V,
                                                scale);
  CUDA_CHECK_LAUNCH();
}

void gla_core_backward(CudaBackend& be, float* dq, float* dk, float* dv, float* dgk,
                       const float* dout, const float* dfinal, const float* q, const float* k,
                       const float* v, const float* gk, int B, int T, int H, int K, int V,
                       float scale, int chunk, bool accumulate) {
  if (B <= 0 || T <= 0 || H <= 0 || K <= 0 || V <= 0) return;
  if (!dq && !dk && !dv && !dgk) return;
  Smem m = pick_layout(be, K, chunk, true);
  size_t bytes = m.total * sizeof(float);
  set_smem(reinterpret_cast<const void*>(gla_bwd_kernel), bytes);
  const int tiles = (V + kBV - 1) / kBV;
  const size_t n_qk = size_t(B) * T * H * K;
  float* dq_part = be.workspace(0, tiles * n_qk);
  float* dk_part = be.workspace(1, tiles * n_qk);
  float* fterm_part = be.workspace(2, size_t(tiles) * B * H * K);
  dim3 grid(tiles, B * H);
  gla_bwd_kernel<<<grid, kScanThreads, bytes>>>(m, dv, dq_part, dk_part, fterm_part, dout, dfinal,
                                                q, k, v, gk, B, T, H, K, V, scale, accumulate);
  CUDA_CHECK_LAUNCH();
  int n_threads = B * H * K;
  gla_bwd_finish_kernel<<<(n_threads + 127) / 128, 128>>>(dq, dk, dgk, dq_part, dk_part, fterm_part,
                                                          q, k, tiles, B, T, H, K, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda

void CudaBackend::gla_forward(float* o, float* final_state, const float* q, const float* k,
                              const float* v, const float* gk, int B, int T, int H, int K, int V,
                              float scale, int chunk) {
  cuda::gla_core_forward(*this, o, final_state, q, k, v, gk, B, T, H, K, V, scale, chunk);
}

void CudaBackend::gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                               const float* dfinal_state, const float* q, const float* k,
                               const float* v, const float* gk, int B, int T, int H, int K, int V,
                               float scale, int chunk, bool accumulate) {
  cuda::gla_core_backward(*this, dq, dk, dv, dgk, dout, dfinal_state, q, k, v, gk, B, T, H, K, V,
                          scale, chunk, accumulate);
}

}  // namespace statex
