// Mamba2 SSD scan (chunked); the D skip is ssd_dskip.cu.
//
// SSD is run on the GLA core (gla.cu): per (b, head h, group g = h / (H/G)), with
//   q = C[b,t,g,:],  k = dt[b,t,h] * B[b,t,g,:],  v = x[b,t,h,:],  gk = dt[b,t,h] * A_h (every n),
// the GLA recurrence S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t is exactly h_t^T of
//   h_t = exp(dt_t A_h) h_{t-1} + dt_t x_t (x) B_t,  y_t = h_t C_t,   A_h = -exp(A_log[h]).
// The GLA state [B, H, N, P] is the transpose of the SSD state [B, H, P, N].
// Backward maps the GLA gradients back by the chain rule:
//   dx = dv,  dB[g] = sum_{h in g} dt dk,  dC[g] = sum_{h in g} dq,
//   ddt += A_h sum_n dgk + sum_n B dk,   dA_log[h] += A_h sum_{b,t} dt sum_n dgk.
// Cost: the q/k/gk inputs are materialised per head in workspace (slots 3-7); the scan itself
// dominates anyway.
#include <stdexcept>

#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"
#include "kernels/detail/gla_core.cuh"

namespace statex {
using namespace cuda;

namespace {

// qs, ks, gs [B, T, H, N]
__global__ void ssd_prepare(float* qs, float* ks, float* gs, const float* dt, const float* A_log,
                            const float* Bm, const float* Cm, size_t BT, int H, int G, int N) {
  GRID_STRIDE(i, BT * H * N) {
    int n = int(i % N);
    size_t bth = i / N;
    int h = int(bth % H);
    size_t bt = bth / H;
    int g = h / (H / G);
    float dtv = dt[bt * H + h];
    size_t bc = (bt * G + g) * N + n;
    qs[i] = Cm[bc];
    ks[i] = dtv * Bm[bc];
    gs[i] = dtv * -expf(A_log[h]);
  }
}

// out [B, H, C1, C0] = transpose of the last two dims of in [B, H, C0, C1]
__global__ void transpose_last2(float* out, const float* in, size_t BH, int C0, int C1) {
  GRID_STRIDE(i, BH * C0 * C1) {
    int c1 = int(i % C1);
    size_t r = i / C1;
    int c0 = int(r % C0);
    size_t bh = r / C0;
    out[(bh * C1 + c1) * C0 + c0] = in[i];
  }
}

// ddt[b,t,h] += A_h sum_n dgs + sum_n B dks
__global__ void ssd_ddt(float* ddt, const float* dks, const float* dgs, const float* A_log,
                        const float* Bm, size_t BT, int H, int G, int N, bool acc) {
  GRID_STRIDE(i, BT * H) {
    int h = int(i % H);
    size_t bt = i / H;
    int g = h / (H / G);
    float sg = 0.f, sb = 0.f;
    for (int n = 0; n < N; ++n) {
      sg += dgs[i * N + n];
      sb += Bm[(bt * G + g) * N + n] * dks[i * N + n];
    }
    store_grad(&ddt[i], -expf(A_log[h]) * sg + sb, acc);
  }
}

struct SsdALogGrad {  // column h: A_h * sum_{b,t} dt[b,t,h] sum_n dgs[b,t,h,n]
  const float *dt, *dgs, *A_log;
  int H, N;
  __device__ float operator()(int r, int h) const {
    size_t i = size_t(r) * H + h;
    float s = 0.f;
    for (int n = 0; n < N; ++n) s += dgs[i * N + n];
    return -expf(A_log[h]) * dt[i] * s;
  }
};

// dB[b,t,g,n] += sum_{h in g} dt dks;  dC[b,t,g,n] += sum_{h in g} dqs
__global__ void ssd_dbc(float* dBm, float* dCm, const float* dqs, const float* dks, const float* dt,
                        size_t BT, int H, int G, int N, bool acc) {
  GRID_STRIDE(i, BT * G * N) {
    int n = int(i % N);
    size_t btg = i / N;
    int g = int(btg % G);
    size_t bt = btg / G;
    int hpg = H / G;
    float sb = 0.f, sc = 0.f;
    for (int h = g * hpg; h < (g + 1) * hpg; ++h) {
      size_t j = (bt * H + h) * N + n;
      sb += dt[bt * H + h] * dks[j];
      sc += dqs[j];
    }
    if (dBm) store_grad(&dBm[i], sb, acc);
    if (dCm) store_grad(&dCm[i], sc, acc);
  }
}

void check_groups(int H, int G) {
  if (G <= 0 || H % G != 0) throw std::invalid_argument("ssd: H must be a multiple of G");
}

}  // namespace

void CudaBackend::ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                              const float* A_log, const float* Bm, const float* Cm, int B, int T,
                              int H, int P, int G, int N, int chunk) {
  check_groups(H, G);
  size_t BT = size_t(B) * T, n_qk = BT * H * N;
  float* qs = workspace(3, n_qk);
  float* ks = workspace(4, n_qk);
  float* gs = workspace(5, n_qk);
  if (n_qk) {
    ssd_prepare<<<blocks_for(n_qk), kThreads>>>(qs, ks, gs, dt, A_log, Bm, Cm, BT, H, G, N);
    CUDA_CHECK_LAUNCH();
  }
  size_t n_state = size_t(B) * H * N * P;
  float* fs = final_state ? workspace(6, n_state) : nullptr;
  gla_core_forward(*this, y, fs, qs, ks, x, gs, B, T, H, N, P, 1.f, chunk);
  if (final_state && n_state) {
    transpose_last2<<<blocks_for(n_state), kThreads>>>(final_state, fs, size_t(B) * H, N, P);
    CUDA_CHECK_LAUNCH();
  }
}

void CudaBackend::ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm,
                               const float* dy, const float* dfinal_state, const float* x,
                               const float* dt, const float* A_log, const float* Bm,
                               const float* Cm, int B, int T, int H, int P, int G, int N, int chunk,
                               bool accumulate) {
  check_groups(H, G);
  size_t BT = size_t(B) * T, n_qk = BT * H * N;
  if (n_qk == 0 || P <= 0) return;
  float* qs = workspace(3, n_qk);
  float* ks = workspace(4, n_qk);
  float* gs = workspace(5, n_qk);
  ssd_prepare<<<blocks_for(n_qk), kThreads>>>(qs, ks, gs, dt, A_log, Bm, Cm, BT, H, G, N);
  CUDA_CHECK_LAUNCH();
  size_t n_state = size_t(B) * H * N * P;
  float* dfin = nullptr;
  if (dfinal_state) {
    dfin = workspace(6, n_state);
    transpose_last2<<<blocks_for(n_state), kThreads>>>(dfin, dfinal_state, size_t(B) * H, P, N);
    CUDA_CHECK_LAUNCH();
  }
  float* grads = workspace(7, 3 * n_qk);
  float *dqs = grads, *dks = grads + n_qk, *dgs = grads + 2 * n_qk;
  // dqs/dks/dgs are scratch: written whole (overwrite), so no zeroing. dx follows `accumulate`:
  // one flag for all four, so with accumulate the scratch is zeroed first.
  if (accumulate) zero(grads, 3 * n_qk * sizeof(float));
  gla_core_backward(*this, dqs, dks, dx, dgs, dy, dfin, qs, ks, x, gs, B, T, H, N, P, 1.f, chunk,
                    accumulate);
  if (ddt) {
    ssd_ddt<<<blocks_for(BT * H), kThreads>>>(ddt, dks, dgs, A_log, Bm, BT, H, G, N, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, dA_log, int(BT), H, SsdALogGrad{dt, dgs, A_log, H, N});
  if (dBm || dCm) {
    size_t n_bc = BT * G * N;
    ssd_dbc<<<blocks_for(n_bc), kThreads>>>(dBm, dCm, dqs, dks, dt, BT, H, G, N, accumulate);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace statex
