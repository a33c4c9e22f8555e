// Chunked SSD (Mamba2 scan), the CPU fast path. Contract: sim/core/backend.h; the per-timestep
// recurrence it is tested against lives in ssd_reference.{h,cpp}.
//
// Per (b, h), chunk of L <= Q steps starting from state S0 [P, N], with log decays
// a_k = dt_k A (<= 0) and their in-chunk cumulative sums cs_i = sum_{k<=i} a_k:
//   y_i   = sum_{j<=i} exp(cs_i - cs_j) dt_j (C_i . B_j) x_j  +  exp(cs_i) S0 C_i
//   S_end = exp(cs_last) S0 + sum_j exp(cs_last - cs_j) dt_j x_j ⊗ B_j
// i.e. Y = (CB ∘ Dec ∘ dt_col) X + diag(e) C S0^T with Dec[i,j] = exp(cs_i - cs_j) (i >= j, else
// 0) and e_i = exp(cs_i). Every exponent is a difference cs_i - cs_j with i >= j (or cs_i itself),
// so it is <= 0: strong decay underflows to 0 and never overflows. The cumulative sums are kept in
// double so that cs_i - cs_j stays accurate when |cs| is large (thousands) within a chunk.
//
// Threading: forward over (b, h). Backward over (b, g): the heads of a group share Bm/Cm, so one
// thread owns all of a group's heads and accumulates dBm/dCm for that (b, g) slice alone; dA_log
// is summed from per-(b, h) partials in b order. Results do not depend on the thread count.
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {
namespace {

using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecF = Eigen::VectorXf;
using Strided = Eigen::Map<MatR, 0, Eigen::OuterStride<>>;
using CStrided = Eigen::Map<const MatR, 0, Eigen::OuterStride<>>;

// Below this much state work (B*T*H*P*N) a parallel region costs more than it saves.
bool worth_parallel(int B, int T, int H, int P, int N) {
  return size_t(B) * T * H * P * N >= (size_t(1) << 16);
}

void check_args(int H, int G, int chunk) {
  if (G <= 0 || H % G != 0) throw std::invalid_argument("ssd: H must be a multiple of G");
  if (chunk <= 0) throw std::invalid_argument("ssd: chunk length must be positive");
}

// Views of one (b, h) chunk [t0, t0+L) of the row-major [B, T, H, P] / [B, T, G, N] tensors.
struct ChunkViews {
  int T, H, P, G, N;
  size_t xo(int b, int t, int h) const { return ((size_t(b) * T + t) * H + h) * P; }
  size_t bo(int b, int t, int g) const { return ((size_t(b) * T + t) * G + g) * N; }
  size_t dto(int b, int t, int h) const { return (size_t(b) * T + t) * H + h; }
  CStrided x(const float* p, int b, int t, int h, int L) const {
    return CStrided(p + xo(b, t, h), L, P, Eigen::OuterStride<>(H * P));
  }
  Strided x(float* p, int b, int t, int h, int L) const {
    return Strided(p + xo(b, t, h), L, P, Eigen::OuterStride<>(H * P));
  }
  CStrided bc(const float* p, int b, int t, int g, int L) const {
    return CStrided(p + bo(b, t, g), L, N, Eigen::OuterStride<>(G * N));
  }
  Strided bc(float* p, int b, int t, int g, int L) const {
    return Strided(p + bo(b, t, g), L, N, Eigen::OuterStride<>(G * N));
  }
};

// Decay quantities of one chunk (see the header comment).
struct ChunkDecay {
  std::vector<double> cs;  // [L] in-chunk cumulative log decay
  VecF dt;                 // [L]
  VecF e;                  // [L] exp(cs_i)
  VecF w_exp;              // [L] exp(cs_last - cs_j)
  VecF w;                  // [L] exp(cs_last - cs_j) dt_j
  MatR dec;                // [L, L] exp(cs_i - cs_j) for i >= j, 0 above the diagonal

  // with_dec = false skips the [L, L] matrix (the backward's state-only pass needs e and w).
  void compute(const float* dt_ptr, size_t dt_stride, float A, int L, bool with_dec = true) {
    cs.resize(L);
    dt.resize(L);
    e.resize(L);
    w_exp.resize(L);
    w.resize(L);
    double run = 0;
    for (int i = 0; i < L; ++i) {
      dt[i] = dt_ptr[i * dt_stride];
      run += double(dt[i]) * A;
      cs[i] = run;
      e[i] = float(std::exp(run));
    }
    for (int j = 0; j < L; ++j) {
      w_exp[j] = std::exp(float(cs[L - 1] - cs[j]));
      w[j] = w_exp[j] * dt[j];
    }
    if (!with_dec) return;
    // Segment sums cs_i - cs_j (from the double cumsums, so accurate), then one vectorised exp.
    // Above the diagonal, and where the decay is below exp(-80) ~ 2e-35 (negligible next to the
    // diagonal's 1, and kept away from denormals that slow down the matmuls), Dec is 0.
    dec.resize(L, L);
    for (int i = 0; i < L; ++i)
      for (int j = 0; j < L; ++j) dec(i, j) = j <= i ? float(std::max(cs[i] - cs[j], -100.0)) : 0.f;
    dec.array() = dec.array().exp();  // Eigen's vectorised exp (libm expf is ~10x slower here)
    for (int i = 0; i < L; ++i)
      for (int j = 0; j < L; ++j)
        if (j > i || cs[i] - cs[j] < kMinLogDecay) dec(i, j) = 0.f;
  }

 private:
  static constexpr double kMinLogDecay = -80.0;
};

}  // namespace

void CpuBackend::ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                             const float* A_log, const float* Bm, const float* Cm, int B, int T,
                             int H, int P, int G, int N, int chunk) {
  check_args(H, G, chunk);
  const ChunkViews V{T, H, P, G, N};
  const int heads_per_group = H / G;
#pragma omp parallel if (worth_parallel(B, T, H, P, N))
  {
    ChunkDecay dk;
    MatR S(P, N), M, CS0;
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) {
        const int g = h / heads_per_group;
        const float A = -std::exp(A_log[h]);
        S.setZero();
        for (int t0 = 0; t0 < T; t0 += chunk) {
          const int L = std::min(chunk, T - t0);
          dk.compute(dt + V.dto(b, t0, h), size_t(H), A, L);
          auto Xc = V.x(x, b, t0, h, L);
          auto Bc = V.bc(Bm, b, t0, g, L);
          auto Cc = V.bc(Cm, b, t0, g, L);
          auto Yc = V.x(y, b, t0, h, L);
          // Intra-chunk: M = (C B^T) ∘ Dec ∘ dt_j.
          M.noalias() = Cc * Bc.transpose();
          M = M.cwiseProduct(dk.dec) * dk.dt.asDiagonal();
          Yc.noalias() = M * Xc;
          // Inter-chunk: contribution of the incoming state.
          CS0.noalias() = Cc * S.transpose();
          Yc.noalias() += dk.e.asDiagonal() * CS0;
          // State passing.
          S *= dk.e[L - 1];
          S.noalias() += Xc.transpose() * (dk.w.asDiagonal() * Bc);
        }
        if (final_state) {
          Eigen::Map<MatR>(final_state + (size_t(b) * H + h) * P * N, P, N) = S;
        }
      }
    }
  }
}

void CpuBackend::ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm,
                              const float* dy, const float* dfinal_state, const float* x,
                              const float* dt, const float* A_log, const float* Bm, const float* Cm,
                              int B, int T, int H, int P, int G, int N, int chunk) {
  check_args(H, G, chunk);
  const ChunkViews V{T, H, P, G, N};
  const int heads_per_group = H / G;
  const int nchunks = (T + chunk - 1) / chunk;
  std::vector<double> dA_part(size_t(B) * H, 0.0);  // dL/dA_h per (b, h)
#pragma omp parallel if (worth_parallel(B, T, H, P, N))
  {
    ChunkDecay dk;
    std::vector<MatR> S0(nchunks, MatR(P, N));  // state entering each chunk
    MatR S(P, N), dS(P, N), CB, M, dM, Hm, dCB, XdS, CS0, dXc;
    VecF r, ddt_c;
    std::vector<double> dcs;
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int g = 0; g < G; ++g) {
        for (int h = g * heads_per_group; h < (g + 1) * heads_per_group; ++h) {
          const float A = -std::exp(A_log[h]);
          // Forward state passing only, to recover each chunk's incoming state.
          S.setZero();
          for (int c = 0; c < nchunks; ++c) {
            const int t0 = c * chunk, L = std::min(chunk, T - t0);
            S0[c] = S;
            dk.compute(dt + V.dto(b, t0, h), size_t(H), A, L, /*with_dec=*/false);
            S *= dk.e[L - 1];
            S.noalias() += V.x(x, b, t0, h, L).transpose() * (dk.w.asDiagonal() * V.bc(Bm, b, t0, g, L));
          }
          if (dfinal_state)
            dS = Eigen::Map<const MatR>(dfinal_state + (size_t(b) * H + h) * P * N, P, N);
          else
            dS.setZero();
          double dA = 0;
          for (int c = nchunks - 1; c >= 0; --c) {
            const int t0 = c * chunk, L = std::min(chunk, T - t0);
            dk.compute(dt + V.dto(b, t0, h), size_t(H), A, L);
            auto Xc = V.x(x, b, t0, h, L);
            auto Bc = V.bc(Bm, b, t0, g, L);
            auto Cc = V.bc(Cm, b, t0, g, L);
            auto dYc = V.x(dy, b, t0, h, L);
            const MatR& S0c = S0[c];
            CB.noalias() = Cc * Bc.transpose();
            M = CB.cwiseProduct(dk.dec) * dk.dt.asDiagonal();  // lower triangular
            dM.noalias() = dYc * Xc.transpose();
            // Hm[i,j] = dL/dM[i,j] * CB[i,j] * Dec[i,j] = d(loss)/d(dt_j) through entry (i,j).
            Hm = dM.cwiseProduct(CB).cwiseProduct(dk.dec);
            dCB = dM.cwiseProduct(dk.dec) * dk.dt.asDiagonal();
            XdS.noalias() = Xc * dS;                             // [L, N]
            r = XdS.cwiseProduct(Bc).rowwise().sum();            // r_j = <dS, x_j ⊗ B_j>
            CS0.noalias() = Cc * S0c.transpose();                // [L, P]
            if (dx) {
              dXc.noalias() = M.transpose() * dYc;
              dXc.noalias() += dk.w.asDiagonal() * (Bc * dS.transpose());
              V.x(dx, b, t0, h, L) += dXc;
            }
            if (dCm) {
              auto dCc = V.bc(dCm, b, t0, g, L);
              dCc.noalias() += dCB * Bc;
              dCc.noalias() += dk.e.asDiagonal() * (dYc * S0c);
            }
            if (dBm) {
              auto dBc = V.bc(dBm, b, t0, g, L);
              dBc.noalias() += dCB.transpose() * Cc;
              dBc.noalias() += dk.w.asDiagonal() * XdS;
            }
            // dL/dcs_i. Intra-chunk: G = Hm ∘ dt_col (= dM ∘ M) gives +rowsum(G)_i and
            // -colsum(G)_i. Its diagonal cancels exactly (exp(cs_i - cs_i) = 1 does not depend on
            // the decays), so it is left out rather than added and subtracted: under strong decay
            // the diagonal dominates and the float cancellation would swamp the true gradient.
            // Same for the state term of j = last below.
            VecF inter = dYc.cwiseProduct(CS0).rowwise().sum();
            ddt_c = Hm.colwise().sum().transpose() + dk.w_exp.cwiseProduct(r);
            dcs.assign(L, 0.0);
            for (int i = 1; i < L; ++i)
              for (int j = 0; j < i; ++j) {
                const double gij = double(Hm(i, j)) * dk.dt[j];
                dcs[i] += gij;
                dcs[j] -= gij;
              }
            double last = double(dk.e[L - 1]) * double(dS.cwiseProduct(S0c).sum());
            for (int i = 0; i < L; ++i) {
              dcs[i] += double(dk.e[i]) * inter[i];
              if (i < L - 1) {
                dcs[i] -= double(dk.w[i]) * r[i];
                last += double(dk.w[i]) * r[i];
              }
            }
            dcs[L - 1] += last;
            // a_k = dt_k A enters every cs_i with i >= k: reverse cumulative sum.
            double da = 0;
            for (int k = L - 1; k >= 0; --k) {
              da += dcs[k];
              ddt_c[k] += float(da * A);
              dA += da * dk.dt[k];
            }
            if (ddt)
              for (int k = 0; k < L; ++k) ddt[V.dto(b, t0 + k, h)] += ddt_c[k];
            // Gradient w.r.t. the incoming state, which is the previous chunk's outgoing state.
            dS *= dk.e[L - 1];
            dS.noalias() += dYc.transpose() * (dk.e.asDiagonal() * Cc);
          }
          dA_part[size_t(b) * H + h] = dA;
        }
      }
    }
  }
  if (dA_log)
    for (int h = 0; h < H; ++h) {
      double s = 0;
      for (int b = 0; b < B; ++b) s += dA_part[size_t(b) * H + h];
      dA_log[h] += float(s * -std::exp(double(A_log[h])));  // dA/dA_log = A
    }
}

}  // namespace statex
