// Causal softmax attention, forward and backward (docs/design.md §1 "Softmax attention").
//
// One warp per query row (forward, dq) or per key row (dk, dv); each lane holds the head
// dimensions lane, lane + 32, ... (Dh <= 32 * kMaxPerLane). The forward walks the keys s <= t
// with the online softmax (running max m, sum l, unnormalised output acc), so no score matrix
// is ever stored; it saves lse_t = m + log l. The backward recomputes p = exp(scale q_t·k_s -
// lse_t) and, with Dv_t = dout_t · o_t (workspace [B, H, T]),
//   ds = p (dout_t · v_s - Dv_t),  dq_t = scale sum_{s<=t} ds k_s,
//   dk_s = scale sum_{t>=s} ds q_t,  dv_s = sum_{t>=s} p dout_t.
// dq and dk/dv are separate kernels (rows of the same head in different warps), so every output
// element has one writer: deterministic, no atomics. Accurate expf throughout.
#include <stdexcept>
#include <string>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kMaxPerLane = 8;  // head dim up to 256
constexpr int kWarpsPerBlock = 4;
constexpr int kDvSlot = 11;  // workspace slot of Dv [B, H, T]

struct Dims {
  int B, T, H, Dh;
  // Offset of element (b, t, h, 0) of a [B, T, H, Dh] tensor.
  __device__ size_t row(int b, int t, int h) const { return ((size_t(b) * T + t) * H + h) * Dh; }
};

// Row `r` in [0, B*H*T) of this warp, as (b, h, t); false past the end.
__device__ bool warp_row(const Dims& d, int& b, int& h, int& t) {
  const size_t r = size_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (r >= size_t(d.B) * d.H * d.T) return false;
  t = int(r % d.T);
  h = int((r / d.T) % d.H);
  b = int(r / (size_t(d.T) * d.H));
  return true;
}

// This lane's part of a head row into registers (zero past Dh).
__device__ void load_row(float (&x)[kMaxPerLane], const float* p, int Dh, float scale = 1.f) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int dd = lane + 32 * j;
    x[j] = dd < Dh ? scale * p[dd] : 0.f;
  }
}

// Full-warp dot product of a register row with a head row in memory.
__device__ float dot_row(const float (&x)[kMaxPerLane], const float* p, int Dh) {
  const int lane = threadIdx.x & 31;
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int dd = lane + 32 * j;
    if (dd < Dh) s += x[j] * p[dd];
  }
  return warp_sum(s);
}

__device__ void axpy_row(float (&acc)[kMaxPerLane], float a, const float* p, int Dh) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int dd = lane + 32 * j;
    if (dd < Dh) acc[j] += a * p[dd];
  }
}

__device__ void store_row(float* p, const float (&x)[kMaxPerLane], int Dh, float a, bool acc) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int dd = lane + 32 * j;
    if (dd < Dh) store_grad(&p[dd], a * x[j], acc);
  }
}

__global__ void attention_fwd(float* o, float* lse, const float* q, const float* k, const float* v,
                              Dims d, float scale) {
  int b, h, t;
  if (!warp_row(d, b, h, t)) return;
  float qs[kMaxPerLane], acc[kMaxPerLane] = {};
  load_row(qs, q + d.row(b, t, h), d.Dh, scale);
  float m = -INFINITY, l = 0.f;
  for (int s = 0; s <= t; ++s) {
    const float sc = dot_row(qs, k + d.row(b, s, h), d.Dh);
    const float m_new = fmaxf(m, sc);
    const float alpha = expf(m - m_new), p = expf(sc - m_new);  // expf(-inf) = 0 at s = 0
    l = l * alpha + p;
#pragma unroll
    for (int j = 0; j < kMaxPerLane; ++j) acc[j] *= alpha;
    axpy_row(acc, p, v + d.row(b, s, h), d.Dh);
    m = m_new;
  }
  store_row(o + d.row(b, t, h), acc, d.Dh, 1.f / l, false);
  if (lse && (threadIdx.x & 31) == 0) lse[(size_t(b) * d.H + h) * d.T + t] = m + logf(l);
}

// Dv [B, H, T] = rowsum(dout ∘ o).
__global__ void attention_bwd_rowdot(float* Dv, const float* dout, const float* o, Dims d) {
  int b, h, t;
  if (!warp_row(d, b, h, t)) return;
  float x[kMaxPerLane];
  load_row(x, dout + d.row(b, t, h), d.Dh);
  const float s = dot_row(x, o + d.row(b, t, h), d.Dh);
  if ((threadIdx.x & 31) == 0) Dv[(size_t(b) * d.H + h) * d.T + t] = s;
}

__global__ void attention_bwd_dq(float* dq, const float* dout, const float* q, const float* k,
                                 const float* v, const float* lse, const float* Dv, Dims d,
                                 float scale, bool accumulate) {
  int b, h, t;
  if (!warp_row(d, b, h, t)) return;
  const size_t bht = (size_t(b) * d.H + h) * d.T + t;
  float qs[kMaxPerLane], dO[kMaxPerLane], acc[kMaxPerLane] = {};
  load_row(qs, q + d.row(b, t, h), d.Dh, scale);
  load_row(dO, dout + d.row(b, t, h), d.Dh);
  const float L = lse[bht], D = Dv[bht];
  for (int s = 0; s <= t; ++s) {
    const float p = expf(dot_row(qs, k + d.row(b, s, h), d.Dh) - L);
    const float ds = p * (dot_row(dO, v + d.row(b, s, h), d.Dh) - D);
    axpy_row(acc, ds, k + d.row(b, s, h), d.Dh);
  }
  store_row(dq + d.row(b, t, h), acc, d.Dh, scale, accumulate);
}

__global__ void attention_bwd_dkdv(float* dk, float* dv, const float* dout, const float* q,
                                   const float* k, const float* v, const float* lse,
                                   const float* Dv, Dims d, float scale, bool accumulate) {
  int b, h, s;
  if (!warp_row(d, b, h, s)) return;
  float ks[kMaxPerLane], vs[kMaxPerLane], dK[kMaxPerLane] = {}, dV[kMaxPerLane] = {};
  load_row(ks, k + d.row(b, s, h), d.Dh, scale);
  load_row(vs, v + d.row(b, s, h), d.Dh);
  const size_t bh = (size_t(b) * d.H + h) * d.T;
  for (int t = s; t < d.T; ++t) {
    const float p = expf(dot_row(ks, q + d.row(b, t, h), d.Dh) - lse[bh + t]);
    const float ds = p * (dot_row(vs, dout + d.row(b, t, h), d.Dh) - Dv[bh + t]);
    axpy_row(dV, p, dout + d.row(b, t, h), d.Dh);
    axpy_row(dK, ds, q + d.row(b, t, h), d.Dh);
  }
  if (dk) store_row(dk + d.row(b, s, h), dK, d.Dh, scale, accumulate);
  if (dv) store_row(dv + d.row(b, s, h), dV, d.Dh, 1.f, accumulate);
}

unsigned row_blocks(const Dims& d) {
  return unsigned((size_t(d.B) * d.H * d.T + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

void check_head_dim(int Dh) {
  if (Dh < 1 || Dh > 32 * kMaxPerLane)
    throw std::invalid_argument("attention (CUDA): head dim " + std::to_string(Dh) +
                                " outside [1, " + std::to_string(32 * kMaxPerLane) +
                                "]; use more heads (model.heads)");
}

}  // namespace

void CudaBackend::attention_forward(float* o, float* lse, const float* q, const float* k,
                                    const float* v, int B, int T, int H, int Dh, float scale) {
  check_head_dim(Dh);
  const Dims d{B, T, H, Dh};
  if (size_t(B) * T * H == 0) return;
  attention_fwd<<<row_blocks(d), 32 * kWarpsPerBlock>>>(o, lse, q, k, v, d, scale);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                     const float* q, const float* k, const float* v, const float* o,
                                     const float* lse, int B, int T, int H, int Dh, float scale,
                                     bool accumulate) {
  check_head_dim(Dh);
  const Dims d{B, T, H, Dh};
  if (size_t(B) * T * H == 0) return;
  float* Dv = workspace(kDvSlot, size_t(B) * H * T);
  const unsigned grid = row_blocks(d), threads = 32 * kWarpsPerBlock;
  attention_bwd_rowdot<<<grid, threads>>>(Dv, dout, o, d);
  if (dq) attention_bwd_dq<<<grid, threads>>>(dq, dout, q, k, v, lse, Dv, d, scale, accumulate);
  if (dk || dv)
    attention_bwd_dkdv<<<grid, threads>>>(dk, dv, dout, q, k, v, lse, Dv, d, scale, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
