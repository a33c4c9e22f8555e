// Naive causal softmax attention (see attention_reference.h): the full score matrix per head,
// double precision throughout, textbook softmax backward dS = P ∘ (dP - rowsum(dP ∘ P)).
#include "sim/ops/cpu/attention_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace statex::reference {
namespace {

// Element (b, t, h, d) of a [B, T, H, Dh] tensor.
inline size_t at(int b, int t, int h, int d, int T, int H, int Dh) {
  return ((size_t(b) * T + t) * H + h) * Dh + d;
}

// P [T, T] (row t holds softmax over s <= t, zero above the diagonal) of head (b, h); returns
// the per-row log-sum-exp in lse_row [T].
void probabilities(std::vector<double>& P, std::vector<double>& lse_row, const float* q,
                   const float* k, int b, int h, int T, int H, int Dh, float scale) {
  P.assign(size_t(T) * T, 0.0);
  lse_row.assign(T, 0.0);
  for (int t = 0; t < T; ++t) {
    double mx = -INFINITY;
    for (int s = 0; s <= t; ++s) {
      double dot = 0;
      for (int d = 0; d < Dh; ++d)
        dot += double(q[at(b, t, h, d, T, H, Dh)]) * k[at(b, s, h, d, T, H, Dh)];
      P[size_t(t) * T + s] = scale * dot;
      mx = std::max(mx, scale * dot);
    }
    double sum = 0;
    for (int s = 0; s <= t; ++s) sum += std::exp(P[size_t(t) * T + s] - mx);
    for (int s = 0; s <= t; ++s) P[size_t(t) * T + s] = std::exp(P[size_t(t) * T + s] - mx) / sum;
    lse_row[t] = mx + std::log(sum);
  }
}

}  // namespace

void attention_forward(float* o, float* lse, const float* q, const float* k, const float* v, int B,
                       int T, int H, int Dh, float scale) {
  std::vector<double> P, lse_row;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      probabilities(P, lse_row, q, k, b, h, T, H, Dh, scale);
      for (int t = 0; t < T; ++t) {
        for (int d = 0; d < Dh; ++d) {
          double acc = 0;
          for (int s = 0; s <= t; ++s) acc += P[size_t(t) * T + s] * v[at(b, s, h, d, T, H, Dh)];
          o[at(b, t, h, d, T, H, Dh)] = float(acc);
        }
        if (lse) lse[(size_t(b) * H + h) * T + t] = float(lse_row[t]);
      }
    }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, int B, int T, int H, int Dh, float scale) {
  std::vector<double> P, lse_row, dS(size_t(T) * T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      probabilities(P, lse_row, q, k, b, h, T, H, Dh, scale);
      for (int t = 0; t < T; ++t) {
        // dP[t, s] = dout_t · v_s; dS = P ∘ (dP - sum_s P dP).
        double row = 0;
        for (int s = 0; s <= t; ++s) {
          double dp = 0;
          for (int d = 0; d < Dh; ++d)
            dp += double(dout[at(b, t, h, d, T, H, Dh)]) * v[at(b, s, h, d, T, H, Dh)];
          dS[size_t(t) * T + s] = dp;
          row += P[size_t(t) * T + s] * dp;
        }
        for (int s = 0; s <= t; ++s)
          dS[size_t(t) * T + s] = P[size_t(t) * T + s] * (dS[size_t(t) * T + s] - row);
      }
      for (int t = 0; t < T; ++t)
        for (int s = 0; s <= t; ++s) {
          const double p = P[size_t(t) * T + s], ds = scale * dS[size_t(t) * T + s];
          for (int d = 0; d < Dh; ++d) {
            if (dv) dv[at(b, s, h, d, T, H, Dh)] += float(p * dout[at(b, t, h, d, T, H, Dh)]);
            if (dq) dq[at(b, t, h, d, T, H, Dh)] += float(ds * k[at(b, s, h, d, T, H, Dh)]);
            if (dk) dk[at(b, s, h, d, T, H, Dh)] += float(ds * q[at(b, t, h, d, T, H, Dh)]);
          }
        }
    }
}

}  // namespace statex::reference
