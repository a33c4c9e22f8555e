// Per-timestep gated delta rule forward and backward in double (see gated_delta_reference.h).
//
// One step, S [K, V], with a = exp(g_t), b = beta_t:
//   Sd = a S_{t-1};  u = Sd^T k_t [V];  w = b (v_t - u) [V];  S_t = Sd + k_t w^T
//   o_t = scale S_t^T q_t
// Backward of that step, given dS = dL/dS_t (including the readout's scale q_t do_t^T):
//   dq_t = scale S_t do_t;  dk_t = dS w + Sd du;  dw = dS^T k_t;  dv_t = b dw;
//   dbeta_t = dw . (v_t - u);  du = -b dw;  dSd = dS + k_t du^T;
//   dg_t = <dSd, Sd>;  dS_{t-1} = a dSd.
#include "sim/ops/cpu/gated_delta_reference.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sim/ops/cpu/detail/reference_layout.h"

namespace statex::reference {
namespace {

// One step of the recurrence: S [K, V] (in: S_{t-1}, out: S_t); u [V] gets Sd^T k.
void step(std::vector<double>& S, std::vector<double>& u, const float* kt, const float* vt,
          double a, double b, int K, int V) {
  for (double& s : S) s *= a;
  std::fill(u.begin(), u.end(), 0.0);
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < V; ++j) u[j] += double(kt[i]) * S[size_t(i) * V + j];
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < V; ++j) S[size_t(i) * V + j] += double(kt[i]) * b * (double(vt[j]) - u[j]);
}

}  // namespace

void gated_delta_forward(float* o, float* final_state, const float* q, const float* k,
                         const float* v, const float* g, const float* beta, int B, int T, int H,
                         int K, int V, float scale) {
  std::vector<double> S(size_t(K) * V), u(V);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      std::fill(S.begin(), S.end(), 0.0);
      for (int t = 0; t < T; ++t) {
        const size_t gi = (size_t(b) * T + t) * H + h;
        step(S, u, k + row(b, t, h, T, H, K), v + row(b, t, h, T, H, V), std::exp(double(g[gi])),
             beta[gi], K, V);
        readout(o + row(b, t, h, T, H, V), q + row(b, t, h, T, H, K), S, K, V, scale);
      }
      if (final_state) store_state(final_state + state_at(b, h, H, K, V), S);
    }
}

void gated_delta_backward(float* dq, float* dk, float* dv, float* dg, float* dbeta,
                          const float* dout, const float* dfinal_state, const float* q,
                          const float* k, const float* v, const float* g, const float* beta, int B,
                          int T, int H, int K, int V, float scale) {
  const size_t KV = size_t(K) * V;
  std::vector<double> states(size_t(T + 1) * KV);  // S_0 .. S_T, each [K, V]
  std::vector<double> S(KV), u(V), dS(KV), Sd(KV), w(V), dw(V), du(V);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      // Forward, keeping every state.
      std::fill(S.begin(), S.end(), 0.0);
      std::copy(S.begin(), S.end(), states.begin());
      for (int t = 0; t < T; ++t) {
        const size_t gi = (size_t(b) * T + t) * H + h;
        step(S, u, k + row(b, t, h, T, H, K), v + row(b, t, h, T, H, V), std::exp(double(g[gi])),
             beta[gi], K, V);
        std::copy(S.begin(), S.end(), states.begin() + size_t(t + 1) * KV);
      }
      if (dfinal_state)
        for (size_t i = 0; i < KV; ++i) dS[i] = dfinal_state[state_at(b, h, H, K, V) + i];
      else
        std::fill(dS.begin(), dS.end(), 0.0);
      for (int t = T - 1; t >= 0; --t) {
        const size_t gi = (size_t(b) * T + t) * H + h;
        const double a = std::exp(double(g[gi])), bt = beta[gi];
        const float* qt = q + row(b, t, h, T, H, K);
        const float* kt = k + row(b, t, h, T, H, K);
        const float* vt = v + row(b, t, h, T, H, V);
        const float* dot = dout + row(b, t, h, T, H, V);
        const double* St = &states[size_t(t + 1) * KV];
        const double* Sp = &states[size_t(t) * KV];
        // Readout: o_t = scale S_t^T q_t.
        for (int i = 0; i < K; ++i) {
          double acc = 0;
          for (int j = 0; j < V; ++j) {
            acc += St[size_t(i) * V + j] * dot[j];
            dS[size_t(i) * V + j] += double(scale) * qt[i] * dot[j];
          }
          if (dq) dq[row(b, t, h, T, H, K) + i] += float(double(scale) * acc);
        }
        // Recompute Sd, u, w of this step.
        for (size_t i = 0; i < KV; ++i) Sd[i] = a * Sp[i];
        std::fill(u.begin(), u.end(), 0.0);
        for (int i = 0; i < K; ++i)
          for (int j = 0; j < V; ++j) u[j] += double(kt[i]) * Sd[size_t(i) * V + j];
        for (int j = 0; j < V; ++j) w[j] = bt * (double(vt[j]) - u[j]);
        // S_t = Sd + k w^T.
        std::fill(dw.begin(), dw.end(), 0.0);
        for (int i = 0; i < K; ++i) {
          double acc = 0;
          for (int j = 0; j < V; ++j) {
            acc += dS[size_t(i) * V + j] * w[j];
            dw[j] += dS[size_t(i) * V + j] * kt[i];
          }
          if (dk) dk[row(b, t, h, T, H, K) + i] += float(acc);
        }
        double db = 0;
        for (int j = 0; j < V; ++j) {
          if (dv) dv[row(b, t, h, T, H, V) + j] += float(bt * dw[j]);
          db += dw[j] * (double(vt[j]) - u[j]);
          du[j] = -bt * dw[j];
        }
        if (dbeta) dbeta[gi] += float(db);
        // u = Sd^T k: dk += Sd du; dSd = dS + k du^T.
        double dgt = 0;
        for (int i = 0; i < K; ++i) {
          double acc = 0;
          for (int j = 0; j < V; ++j) {
            acc += Sd[size_t(i) * V + j] * du[j];
            const double dsd = dS[size_t(i) * V + j] + double(kt[i]) * du[j];
            dgt += dsd * Sd[size_t(i) * V + j];
            dS[size_t(i) * V + j] = a * dsd;  // now dL/dS_{t-1}
          }
          if (dk) dk[row(b, t, h, T, H, K) + i] += float(acc);
        }
        if (dg) dg[gi] += float(dgt);
      }
    }
}

}  // namespace statex::reference
