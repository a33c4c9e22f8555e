// Per-timestep recurrent GLA forward and backward in double (see gla_reference.h).
#include "sim/ops/cpu/gla_reference.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sim/ops/cpu/detail/reference_layout.h"

namespace statex::reference {

void gla_forward(float* o, float* final_state, const float* q, const float* k, const float* v,
                 const float* gk, int B, int T, int H, int K, int V, float scale) {
  std::vector<double> S(size_t(K) * V);  // [K, V]
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      std::fill(S.begin(), S.end(), 0.0);
      for (int t = 0; t < T; ++t) {
        const float* qt = q + row(b, t, h, T, H, K);
        const float* kt = k + row(b, t, h, T, H, K);
        const float* gt = gk + row(b, t, h, T, H, K);
        const float* vt = v + row(b, t, h, T, H, V);
        // S = diag(alpha_t) S + k_t^T v_t
        for (int i = 0; i < K; ++i) {
          double alpha = std::exp(double(gt[i]));
          for (int j = 0; j < V; ++j)
            S[size_t(i) * V + j] = alpha * S[size_t(i) * V + j] + double(kt[i]) * vt[j];
        }
        readout(o + row(b, t, h, T, H, V), qt, S, K, V, scale);  // o_t = (scale q_t) S
      }
      if (final_state) store_state(final_state + state_at(b, h, H, K, V), S);
    }
  }
}

void gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                  const float* dfinal_state, const float* q, const float* k, const float* v,
                  const float* gk, int B, int T, int H, int K, int V, float scale) {
  const size_t KV = size_t(K) * V;
  std::vector<double> states(size_t(T + 1) * KV);  // S_0 .. S_T, each [K, V]
  std::vector<double> dS(KV);                       // dL/dS_t, walked backwards
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      // Forward again, keeping every state (no division by alpha on the way back: unstable).
      std::fill(states.begin(), states.begin() + KV, 0.0);
      for (int t = 0; t < T; ++t) {
        const float* kt = k + row(b, t, h, T, H, K);
        const float* gt = gk + row(b, t, h, T, H, K);
        const float* vt = v + row(b, t, h, T, H, V);
        const double* prev = &states[size_t(t) * KV];
        double* cur = &states[size_t(t + 1) * KV];
        for (int i = 0; i < K; ++i) {
          double alpha = std::exp(double(gt[i]));
          for (int j = 0; j < V; ++j)
            cur[size_t(i) * V + j] = alpha * prev[size_t(i) * V + j] + double(kt[i]) * vt[j];
        }
      }
      if (dfinal_state) {
        const float* dfs = dfinal_state + state_at(b, h, H, K, V);
        for (size_t i = 0; i < KV; ++i) dS[i] = dfs[i];
      } else {
        std::fill(dS.begin(), dS.end(), 0.0);
      }
      for (int t = T - 1; t >= 0; --t) {
        const float* qt = q + row(b, t, h, T, H, K);
        const float* kt = k + row(b, t, h, T, H, K);
        const float* gt = gk + row(b, t, h, T, H, K);
        const float* vt = v + row(b, t, h, T, H, V);
        const float* dot = dout + row(b, t, h, T, H, V);
        const double* prev = &states[size_t(t) * KV];
        const double* cur = &states[size_t(t + 1) * KV];
        // o_t = scale q_t S_t:  dq_t = scale dO_t S_t^T,  dS_t += scale q_t^T dO_t
        for (int i = 0; i < K; ++i) {
          double acc = 0;
          for (int j = 0; j < V; ++j) {
            acc += double(dot[j]) * cur[size_t(i) * V + j];
            dS[size_t(i) * V + j] += double(scale) * qt[i] * dot[j];
          }
          if (dq) dq[row(b, t, h, T, H, K) + i] += float(double(scale) * acc);
        }
        // S_t = diag(alpha_t) S_{t-1} + k_t^T v_t
        for (int j = 0; j < V; ++j) {  // dv_t = k_t dS_t
          double acc = 0;
          for (int i = 0; i < K; ++i) acc += double(kt[i]) * dS[size_t(i) * V + j];
          if (dv) dv[row(b, t, h, T, H, V) + j] += float(acc);
        }
        for (int i = 0; i < K; ++i) {
          double alpha = std::exp(double(gt[i]));
          double dk_acc = 0, dalpha = 0;
          for (int j = 0; j < V; ++j) {
            dk_acc += dS[size_t(i) * V + j] * vt[j];
            dalpha += dS[size_t(i) * V + j] * prev[size_t(i) * V + j];
            dS[size_t(i) * V + j] *= alpha;  // dS_{t-1} = diag(alpha_t) dS_t
          }
          if (dk) dk[row(b, t, h, T, H, K) + i] += float(dk_acc);
          if (dgk) dgk[row(b, t, h, T, H, K) + i] += float(dalpha * alpha);  // d alpha/d gk = alpha
        }
      }
    }
  }
}

}  // namespace statex::reference
