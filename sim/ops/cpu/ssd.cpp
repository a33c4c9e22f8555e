// Chunked SSD (Mamba2 scan), the CPU fast path. Contract: sim/core/ops.def; the per-timestep
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
// Heads of a group are batched. They share Bm/Cm, so C B^T is computed once per chunk, and the
// state products of all hg = H/G heads become one product each: the group's states stacked as
// S_g [hg*P, N] give C S_g^T [L, hg*P], X_w^T B [hg*P, N] and so on (at P = N = L = 16 the
// per-head products are 16x16x16, where a GEMM kernel runs at ~17 GFLOP/s on this machine; the
// batched ones reach ~40). Only M X, M^T dY and dY X^T stay per head (their decays differ).
//
// Factored form. While a head's decay span in the chunk, -cs_last, is at most kMaxFactoredSpan,
// Dec[i,j] = e_i / e_j with every e_j >= e^-40 a normal float, so
//   M_h = diag(e_h) T diag(dt_h / e_h),   T = (C B^T) ∘ tril   (shared by the group's heads),
// and the intra-chunk products of those heads become single products over the stacked heads:
// Y = diag(e) [T X' + C S0^T] with X'_h = diag(dt_h / e_h) X_h, dX += diag(dt/e) T^T (e ∘ dY),
// dCB = (e ∘ dY) X'^T ∘ tril. No [L, L] exp per head. Each term keeps float relative accuracy: a
// row's terms share the factor e_i, applied after the sum (the fast form of gla.cpp). A head
// with stronger decay in the chunk takes the per-head form above, which never forms exp(+x):
// its columns of X' are zero, and its outputs are overwritten by the per-head path.
//
// Threading: over (b, g) pairs, forward and backward (B*G tasks: enough at training batch sizes;
// a batch of one with one group runs on one thread); one thread owns a group's heads and
// accumulates dBm/dCm for its (b, g) slice alone; dA_log is summed from per-(b, h) partials in b
// order. Results do not depend on the thread count.
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"
#include "sim/ops/cpu/detail/small_gemm.h"

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

// Offsets into the row-major [B, T, H, P] / [B, T, G, N] / [B, T, H] tensors, and views of one
// (b, g) chunk [t0, t0+L) of Bm / Cm.
struct ChunkViews {
  int T, H, P, G, N;
  size_t xo(int b, int t, int h) const { return ((size_t(b) * T + t) * H + h) * P; }
  size_t bo(int b, int t, int g) const { return ((size_t(b) * T + t) * G + g) * N; }
  size_t dto(int b, int t, int h) const { return (size_t(b) * T + t) * H + h; }
  CStrided bc(const float* p, int b, int t, int g, int L) const {
    return CStrided(p + bo(b, t, g), L, N, Eigen::OuterStride<>(G * N));
  }
  Strided bc(float* p, int b, int t, int g, int L) const {
    return Strided(p + bo(b, t, g), L, N, Eigen::OuterStride<>(G * N));
  }
};

// A decay exp(a), a <= 0, is taken as 0 below exp(kMinLogDecay) ~ 2e-35: negligible next to the
// diagonal's 1, and kept away from denormals that slow down the matmuls. Exponents are clamped
// first so that the exp itself never sees a huge negative argument.
constexpr float kMinLogDecay = -80.f;
constexpr double kMaxFactoredSpan = 40.0;  // factored form while exp(-cs) <= e^40 ~ 2e17
constexpr float kClampLogDecay = -100.f;
float clamped_log_decay(double a) { return float(std::max(a, double(kClampLogDecay))); }
// a <- exp(a) in place (Eigen's vectorised exp), 0 below exp(kMinLogDecay).
// (Two passes: Eigen 3.4 does not vectorise select(), so a fused select(.., a.exp()) would run a
// scalar expf per element.)
template <class ArrayExpr>
void exp_to_decay(ArrayExpr&& a) {
  static const float min_decay = std::exp(kMinLogDecay);
  a = a.exp();
  a = (a < min_decay).select(0.f, a);
}

// Decay quantities of one chunk (see the header comment).
struct ChunkDecay {
  std::vector<double> cs;  // [L] in-chunk cumulative log decay
  float A = 0;             // the head's A = -exp(A_log) (log decay per unit dt)
  VecF dt;                 // [L]
  VecF e;                  // [L] exp(cs_i)
  VecF w_exp;              // [L] exp(cs_last - cs_j)
  VecF w;                  // [L] exp(cs_last - cs_j) dt_j
  VecF inv_e, u;           // [L] 1 / e_j and dt_j / e_j: factored form only
  bool factored = false;   // span <= kMaxFactoredSpan: this chunk takes the factored form
  MatR dec;                // [L, L] exp(cs_i - cs_j) for i >= j, 0 above the diagonal

  // with_dec = false skips the [L, L] matrix (the state-only pass and the factored form need only
  // e and w; compute_dec adds it later).
  void compute(const float* dt_ptr, size_t dt_stride, float A_head, int L, bool with_dec = true) {
    A = A_head;
    cs.resize(L);
    dt.resize(L);
    double run = 0;
    for (int i = 0; i < L; ++i) {
      dt[i] = dt_ptr[i * dt_stride];
      run += double(dt[i]) * A;
      cs[i] = run;
    }
    // Every exponent is a difference of the double cumsums (so accurate), rounded to float once;
    // the exps are Eigen's vectorised ones (libm's scalar exp was ~20% of the scan's time).
    e.resize(L);
    w_exp.resize(L);
    for (int i = 0; i < L; ++i) {
      e[i] = clamped_log_decay(cs[i]);
      w_exp[i] = clamped_log_decay(cs[L - 1] - cs[i]);
    }
    exp_to_decay(e.array());
    exp_to_decay(w_exp.array());
    w = w_exp.cwiseProduct(dt);
    factored = span() <= kMaxFactoredSpan;
    if (factored) {
      inv_e = e.cwiseInverse();
      u = dt.cwiseProduct(inv_e);
    }
    if (with_dec) compute_dec(L);
  }

  // -cs_last: how far the chunk decays its entering state (log scale).
  double span() const { return -cs.back(); }

  void compute_dec(int L) {
    // Dec[i, j] = exp(cs_i - cs_j) on and below the diagonal, 0 above it.
    dec.resize(L, L);
    const Eigen::Map<const Eigen::ArrayXd> csv(cs.data(), L);
    for (int i = 0; i < L; ++i) {  // row i: cs_i - cs_j for j <= i, vectorised, no temporaries
      dec.row(i).head(i + 1).array() =
          (cs[i] - csv.head(i + 1)).max(double(kClampLogDecay)).cast<float>().transpose();
      dec.row(i).tail(L - 1 - i).setConstant(kClampLogDecay);
    }
    exp_to_decay(dec.array());
  }
};

// Views of a group's hg heads within one chunk: X-like tensors [L, hg*P] (row stride H*P),
// the group's stacked states [hg*P, N], and the head blocks of both.
struct GroupViews {
  ChunkViews V;
  int hg;  // heads per group
  CStrided x(const float* p, int b, int t, int g, int L) const {
    return CStrided(p + V.xo(b, t, g * hg), L, hg * V.P, Eigen::OuterStride<>(V.H * V.P));
  }
  Strided x(float* p, int b, int t, int g, int L) const {
    return Strided(p + V.xo(b, t, g * hg), L, hg * V.P, Eigen::OuterStride<>(V.H * V.P));
  }
  // Offset of the group's states in a [B, H, P, N] tensor (contiguous [hg*P, N]).
  size_t state_offset(int b, int g) const { return (size_t(b) * V.H + g * hg) * V.P * V.N; }
};

// Per-head decays of one chunk for the hg heads of group g. With `intra` (the chunk's outputs
// are wanted, not only its state) the heads outside the factored form also get their Dec
// matrix. Returns whether any head takes the factored form.
bool compute_group_decays(std::vector<ChunkDecay>& dks, const float* dt, const float* A_log,
                          const ChunkViews& V, int b, int t0, int g, int hg, int L, bool intra) {
  bool any_factored = false;
  for (int hl = 0; hl < hg; ++hl) {
    const int h = g * hg + hl;
    dks[hl].compute(dt + V.dto(b, t0, h), size_t(V.H), -std::exp(A_log[h]), L, false);
    any_factored = any_factored || dks[hl].factored;
    if (intra && !dks[hl].factored) dks[hl].compute_dec(L);
  }
  return any_factored;
}

// Xs [L, hg*P] = per factored head diag(dt_h / e_h) X_h (e_h >= e^-40 there), 0 for the others.
template <class XView>
void scale_by_dt_over_e(MatR& Xs, const std::vector<ChunkDecay>& dks, const XView& Xc, int P,
                        int L) {
  Xs.resize(L, int(dks.size()) * P);
  for (int hl = 0; hl < int(dks.size()); ++hl) {
    if (dks[hl].factored)
      Xs.middleCols(hl * P, P) = dks[hl].u.asDiagonal() * Xc.middleCols(hl * P, P);
    else
      Xs.middleCols(hl * P, P).setZero();
  }
}

// S_g [hg*P, N] <- diag(e_last per head) S_g + (X ∘ w)^T B: the state after one chunk.
// Xw [L, hg*P] is scratch.
template <class XView, class BView>
void pass_state(MatR& S, MatR& Xw, const std::vector<ChunkDecay>& dks, const XView& Xc,
                const BView& Bc, int P, int L) {
  const int hg = int(dks.size());
  Xw.resize(L, hg * P);
  for (int hl = 0; hl < hg; ++hl) {
    S.middleRows(hl * P, P) *= dks[hl].e[L - 1];
    Xw.middleCols(hl * P, P) = dks[hl].w.asDiagonal() * Xc.middleCols(hl * P, P);
  }
  small_gemm::mm_tn(S, Xw, Bc, true);
}

}  // namespace

void CpuBackend::ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                             const float* A_log, const float* Bm, const float* Cm, int B, int T,
                             int H, int P, int G, int N, int chunk) {
  check_args(H, G, chunk);
  const ChunkViews V{T, H, P, G, N};
  const GroupViews GV{V, H / G};
  const int hg = GV.hg;
#pragma omp parallel if (worth_parallel(B, T, H, P, N))
  {
    std::vector<ChunkDecay> dks(hg);
    MatR S(hg * P, N), CB, M, CS, Xw, Xs;
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int g = 0; g < G; ++g) {
        S.setZero();
        for (int t0 = 0; t0 < T; t0 += chunk) {
          const int L = std::min(chunk, T - t0);
          const bool any_factored =
              compute_group_decays(dks, dt, A_log, V, b, t0, g, hg, L, /*intra=*/true);
          auto Xc = GV.x(x, b, t0, g, L);
          auto Yc = GV.x(y, b, t0, g, L);
          auto Bc = V.bc(Bm, b, t0, g, L);
          auto Cc = V.bc(Cm, b, t0, g, L);
          CB.noalias() = Cc * Bc.transpose();  // [L, L], shared by the group's heads
          CS.noalias() = Cc * S.transpose();   // [L, hg*P]: every head's C S0^T
          // T = C B^T ∘ tril: the per-head form's M is unchanged by it (Dec is 0 above the
          // diagonal too).
          CB.triangularView<Eigen::StrictlyUpper>().setZero();
          if (any_factored) {
            // Y_h = diag(e_h) [T X'_h + C S0_h^T], one product for all factored heads.
            scale_by_dt_over_e(Xs, dks, Xc, P, L);
            small_gemm::mm(CS, CB, Xs, true, /*lower_depth=*/true);
            for (int hl = 0; hl < hg; ++hl)
              if (dks[hl].factored)
                Yc.middleCols(hl * P, P) = dks[hl].e.asDiagonal() * CS.middleCols(hl * P, P);
          }
          for (int hl = 0; hl < hg; ++hl) {
            const ChunkDecay& dk = dks[hl];
            if (dk.factored) continue;
            // Intra-chunk: M = (C B^T) ∘ Dec ∘ dt_j; plus the incoming state's contribution.
            M = CB.cwiseProduct(dk.dec) * dk.dt.asDiagonal();
            auto Yh = Yc.middleCols(hl * P, P);
            small_gemm::mm(Yh, M, Xc.middleCols(hl * P, P), false, /*lower_depth=*/true);
            Yh.noalias() += dk.e.asDiagonal() * CS.middleCols(hl * P, P);
          }
          pass_state(S, Xw, dks, Xc, Bc, P, L);
        }
        if (final_state) Eigen::Map<MatR>(final_state + GV.state_offset(b, g), hg * P, N) = S;
      }
    }
  }
}

void CpuBackend::ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm,
                              const float* dy, const float* dfinal_state, const float* x,
                              const float* dt, const float* A_log, const float* Bm, const float* Cm,
                              int B, int T, int H, int P, int G, int N, int chunk,
                              bool accumulate) {
  check_args(H, G, chunk);
  const ChunkViews V{T, H, P, G, N};
  const GroupViews GV{V, H / G};
  const int hg = GV.hg;
  const int nchunks = (T + chunk - 1) / chunk;
  std::vector<double> dA_part(size_t(B) * H, 0.0);  // dL/dA_h per (b, h)
#pragma omp parallel if (worth_parallel(B, T, H, P, N))
  {
    std::vector<ChunkDecay> dks(hg);
    std::vector<MatR> S0(nchunks, MatR(hg * P, N));  // group's states entering each chunk
    // Group-wide [L, hg*P]: CS0 = C S0^T, BdS = B dS^T, Xw = X ∘ w, dYe = dY ∘ e (per head).
    MatR S(hg * P, N), dS(hg * P, N), CB, M, dM, Hm, dCB, dCB_sum, CS0, BdS, Xw, dYe;
    MatR Xs, Xu, Q;  // factored form: X'_h = diag(dt/e) X_h, diag(1/e) X_h, T^T (e ∘ dY)
    VecF r, ddt_c, inter;
    std::vector<double> dcs, dA(hg);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int g = 0; g < G; ++g) {
        // Forward state passing only, to recover each chunk's incoming states.
        S.setZero();
        for (int c = 0; c < nchunks; ++c) {
          const int t0 = c * chunk, L = std::min(chunk, T - t0);
          S0[c] = S;
          compute_group_decays(dks, dt, A_log, V, b, t0, g, hg, L, /*intra=*/false);
          pass_state(S, Xw, dks, GV.x(x, b, t0, g, L), V.bc(Bm, b, t0, g, L), P, L);
        }
        if (dfinal_state)
          dS = Eigen::Map<const MatR>(dfinal_state + GV.state_offset(b, g), hg * P, N);
        else
          dS.setZero();
        std::fill(dA.begin(), dA.end(), 0.0);
        for (int c = nchunks - 1; c >= 0; --c) {
          const int t0 = c * chunk, L = std::min(chunk, T - t0);
          const bool any_factored =
              compute_group_decays(dks, dt, A_log, V, b, t0, g, hg, L, /*intra=*/true);
          auto Xc = GV.x(x, b, t0, g, L);
          auto dYc = GV.x(dy, b, t0, g, L);
          auto Bc = V.bc(Bm, b, t0, g, L);
          auto Cc = V.bc(Cm, b, t0, g, L);
          const MatR& S0c = S0[c];
          CB.noalias() = Cc * Bc.transpose();   // [L, L]
          CS0.noalias() = Cc * S0c.transpose();  // [L, hg*P]
          BdS.noalias() = Bc * dS.transpose();   // [L, hg*P]
          Xw.resize(L, hg * P);
          dYe.resize(L, hg * P);
          for (int hl = 0; hl < hg; ++hl)
            dYe.middleCols(hl * P, P) = dks[hl].e.asDiagonal() * dYc.middleCols(hl * P, P);
          CB.triangularView<Eigen::StrictlyUpper>().setZero();  // T (as in the forward)
          if (any_factored) {
            // Over the factored heads: dCB = (e ∘ dY) X'^T ∘ tril, Q = T^T (e ∘ dY).
            scale_by_dt_over_e(Xs, dks, Xc, P, L);
            dCB_sum.noalias() = dYe * Xs.transpose();
            dCB_sum.triangularView<Eigen::StrictlyUpper>().setZero();
            if (dx) {
              Q.resize(L, hg * P);
              small_gemm::mm_tn(Q, CB, dYe, false);
            }
            Xu.resize(L, hg * P);
            for (int hl = 0; hl < hg; ++hl)
              if (dks[hl].factored)
                Xu.middleCols(hl * P, P) = dks[hl].inv_e.asDiagonal() * Xc.middleCols(hl * P, P);
          } else {
            dCB_sum.setZero(L, L);
          }
          for (int hl = 0; hl < hg; ++hl) {
            const ChunkDecay& dk = dks[hl];
            const float A = dk.A;
            auto Xh = Xc.middleCols(hl * P, P);
            auto dYh = dYc.middleCols(hl * P, P);
            auto BdSh = BdS.middleCols(hl * P, P);
            auto dX_head = [&] { return GV.x(dx, b, t0, g, L).middleCols(hl * P, P); };
            // Hm[i,j] = dL/dM[i,j] * CB[i,j] * Dec[i,j] = d(loss)/d(dt_j) through entry (i,j).
            if (dk.factored) {
              // dM ∘ Dec = (e ∘ dY_h) (X_h / e)^T; T is zero above the diagonal.
              dM.noalias() = dYe.middleCols(hl * P, P) * Xu.middleCols(hl * P, P).transpose();
              Hm = dM.cwiseProduct(CB);
              if (dx)
                store_grad(dX_head().noalias(), dk.u.asDiagonal() * Q.middleCols(hl * P, P),
                           accumulate);
            } else {
              M = CB.cwiseProduct(dk.dec) * dk.dt.asDiagonal();  // lower triangular
              dM.noalias() = dYh * Xh.transpose();
              Hm = dM.cwiseProduct(CB).cwiseProduct(dk.dec);
              dCB = dM.cwiseProduct(dk.dec) * dk.dt.asDiagonal();
              dCB_sum += dCB;
              if (dx) small_gemm::mm_tn(dX_head(), M, dYh, accumulate);
            }
            // r_j = <dS_h, x_j ⊗ B_j> = sum_p x_jp (B dS_h^T)_jp
            r = Xh.cwiseProduct(BdSh).rowwise().sum();
            if (dx) dX_head().noalias() += dk.w.asDiagonal() * BdSh;
            Xw.middleCols(hl * P, P) = dk.w.asDiagonal() * Xh;
            // dL/dcs_i. Intra-chunk: G = Hm ∘ dt_col (= dM ∘ M) gives +rowsum(G)_i and
            // -colsum(G)_i. Its diagonal cancels exactly (exp(cs_i - cs_i) = 1 does not depend
            // on the decays), so it is left out rather than added and subtracted: under strong
            // decay the diagonal dominates and the float cancellation would swamp the true
            // gradient. Same for the state term of j = last below.
            inter = dYh.cwiseProduct(CS0.middleCols(hl * P, P)).rowwise().sum();
            ddt_c = Hm.colwise().sum().transpose() + dk.w_exp.cwiseProduct(r);
            dcs.assign(L, 0.0);
            for (int i = 1; i < L; ++i)
              for (int j = 0; j < i; ++j) {
                const double gij = double(Hm(i, j)) * dk.dt[j];
                dcs[i] += gij;
                dcs[j] -= gij;
              }
            const double state_dot =
                dS.middleRows(hl * P, P).cwiseProduct(S0c.middleRows(hl * P, P)).sum();
            double last = double(dk.e[L - 1]) * state_dot;
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
              dA[hl] += da * dk.dt[k];
            }
            if (ddt)
              for (int k = 0; k < L; ++k)
                store_grad(ddt[V.dto(b, t0 + k, g * hg + hl)], ddt_c[k], accumulate);
          }
          // Group-wide products: sums over the group's heads happen inside one product each.
          if (dCm) {
            auto dCc = V.bc(dCm, b, t0, g, L);
            small_gemm::mm(dCc, dCB_sum, Bc, accumulate);
            small_gemm::mm(dCc, dYe, S0c, true);  // sum_h diag(e_h) dY_h S0_h
          }
          if (dBm) {
            auto dBc = V.bc(dBm, b, t0, g, L);
            small_gemm::mm_tn(dBc, dCB_sum, Cc, accumulate);
            small_gemm::mm(dBc, Xw, dS, true);  // sum_h diag(w_h) X_h dS_h
          }
          // Gradient w.r.t. the incoming states (the previous chunk's outgoing states).
          for (int hl = 0; hl < hg; ++hl) dS.middleRows(hl * P, P) *= dks[hl].e[L - 1];
          small_gemm::mm_tn(dS, dYe, Cc, true);
        }
        for (int hl = 0; hl < hg; ++hl) dA_part[size_t(b) * H + g * hg + hl] = dA[hl];
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
