// Per-timestep recurrent SSD, forward and reverse-time backward (see ssd_reference.h).
#include "sim/ops/cpu/ssd_reference.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace statex::reference {
namespace {

void check_shapes(int H, int G) {
  if (G <= 0 || H % G != 0) throw std::invalid_argument("ssd: H must be a multiple of G");
}

// Index helpers for the row-major layouts in the header.
struct Layout {
  int T, H, P, G, N;
  size_t x(int b, int t, int h) const { return ((size_t(b) * T + t) * H + h) * P; }
  size_t dt(int b, int t, int h) const { return (size_t(b) * T + t) * H + h; }
  size_t bc(int b, int t, int g) const { return ((size_t(b) * T + t) * G + g) * N; }
  size_t state(int b, int h) const { return (size_t(b) * H + h) * P * N; }
};

}  // namespace

void ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                 const float* A_log, const float* Bm, const float* Cm, int B, int T, int H, int P,
                 int G, int N) {
  check_shapes(H, G);
  const Layout L{T, H, P, G, N};
  const int heads_per_group = H / G;
#pragma omp parallel for schedule(static) if (size_t(B) * T * H * P * N >= (size_t(1) << 16))
  for (int b = 0; b < B; ++b) {
    std::vector<double> S(size_t(P) * N);  // state h_t [P, N]
    for (int h = 0; h < H; ++h) {
      const int g = h / heads_per_group;
      const double A = -std::exp(double(A_log[h]));
      std::fill(S.begin(), S.end(), 0.0);
      for (int t = 0; t < T; ++t) {
        const double d = dt[L.dt(b, t, h)];
        const double decay = std::exp(d * A);
        const float* xt = x + L.x(b, t, h);
        const float* Bt = Bm + L.bc(b, t, g);
        const float* Ct = Cm + L.bc(b, t, g);
        float* yt = y + L.x(b, t, h);
        for (int p = 0; p < P; ++p) {
          double acc = 0;
          double* Sp = S.data() + size_t(p) * N;
          for (int n = 0; n < N; ++n) {
            Sp[n] = decay * Sp[n] + d * xt[p] * Bt[n];
            acc += Sp[n] * Ct[n];
          }
          yt[p] = float(acc);
        }
      }
      if (final_state)
        for (size_t i = 0; i < S.size(); ++i) final_state[L.state(b, h) + i] = float(S[i]);
    }
  }
}

void ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm, const float* dy,
                  const float* dfinal_state, const float* x, const float* dt, const float* A_log,
                  const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N) {
  check_shapes(H, G);
  const Layout L{T, H, P, G, N};
  const int heads_per_group = H / G;
  const size_t PN = size_t(P) * N;
  std::vector<double> dA_part(size_t(B) * H, 0.0);  // per-b dL/dA_h, added in b order below
#pragma omp parallel for schedule(static) if (size_t(B) * T * H * P * N >= (size_t(1) << 16))
  for (int b = 0; b < B; ++b) {
    std::vector<double> states(size_t(T + 1) * PN);  // states[t+1] = h_t, states[0] = 0
    std::vector<double> dS(PN);                      // dL/dh_t
    for (int h = 0; h < H; ++h) {
      const int g = h / heads_per_group;
      const double A = -std::exp(double(A_log[h]));
      // Forward again, keeping every state.
      std::fill(states.begin(), states.begin() + PN, 0.0);
      for (int t = 0; t < T; ++t) {
        const double d = dt[L.dt(b, t, h)], decay = std::exp(d * A);
        const float* xt = x + L.x(b, t, h);
        const float* Bt = Bm + L.bc(b, t, g);
        const double* prev = states.data() + size_t(t) * PN;
        double* cur = states.data() + size_t(t + 1) * PN;
        for (int p = 0; p < P; ++p)
          for (int n = 0; n < N; ++n)
            cur[p * N + n] = decay * prev[p * N + n] + d * xt[p] * Bt[n];
      }
      for (size_t i = 0; i < PN; ++i)
        dS[i] = dfinal_state ? double(dfinal_state[L.state(b, h) + i]) : 0.0;
      double dA = 0;
      for (int t = T - 1; t >= 0; --t) {
        const double d = dt[L.dt(b, t, h)], decay = std::exp(d * A);
        const float* xt = x + L.x(b, t, h);
        const float* Bt = Bm + L.bc(b, t, g);
        const float* Ct = Cm + L.bc(b, t, g);
        const float* dyt = dy + L.x(b, t, h);
        const double* prev = states.data() + size_t(t) * PN;
        const double* cur = states.data() + size_t(t + 1) * PN;
        // y_t = h_t C_t
        for (int p = 0; p < P; ++p)
          for (int n = 0; n < N; ++n) dS[p * N + n] += double(dyt[p]) * Ct[n];
        if (dCm)
          for (int n = 0; n < N; ++n) {
            double s = 0;
            for (int p = 0; p < P; ++p) s += cur[p * N + n] * dyt[p];
            dCm[L.bc(b, t, g) + n] += float(s);
          }
        // h_t = decay h_{t-1} + d x_t ⊗ B_t
        double ddecay = 0, dd = 0;
        for (int p = 0; p < P; ++p)
          for (int n = 0; n < N; ++n) {
            ddecay += dS[p * N + n] * prev[p * N + n];
            dd += dS[p * N + n] * xt[p] * Bt[n];
          }
        if (dx)
          for (int p = 0; p < P; ++p) {
            double s = 0;
            for (int n = 0; n < N; ++n) s += dS[p * N + n] * Bt[n];
            dx[L.x(b, t, h) + p] += float(d * s);
          }
        if (dBm)
          for (int n = 0; n < N; ++n) {
            double s = 0;
            for (int p = 0; p < P; ++p) s += dS[p * N + n] * xt[p];
            dBm[L.bc(b, t, g) + n] += float(d * s);
          }
        // decay = exp(d A): d(decay)/d(d) = decay A, d(decay)/dA = decay d.
        if (ddt) ddt[L.dt(b, t, h)] += float(dd + ddecay * decay * A);
        dA += ddecay * decay * d;
        for (size_t i = 0; i < PN; ++i) dS[i] *= decay;
      }
      dA_part[size_t(b) * H + h] = dA;
    }
  }
  if (dA_log)
    for (int h = 0; h < H; ++h) {
      // A = -exp(A_log), so dA/dA_log = A.
      double s = 0;
      for (int b = 0; b < B; ++b) s += dA_part[size_t(b) * H + h];
      dA_log[h] += float(s * -std::exp(double(A_log[h])));
    }
}

}  // namespace statex::reference
