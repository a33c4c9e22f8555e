// GLA chunked fast path on the CPU (docs/design.md §1). Per (b, h) pair, sequential in time:
//   S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t,  o_t = (scale q_t) S_t.
// The sequence is cut into chunks of `chunk` rows (the last may be partial). Inside a chunk,
// with B_i = sum_{s<=i} gk_s (cumulative log decay from the chunk start, <= 0, decreasing):
//   o_i   = (scale q_i ∘ exp(B_i)) · S_in  +  sum_{j<=i} A_ij v_j,
//   A_ij  = scale sum_d q_id k_jd exp(B_id - B_jd)                  (intra-chunk attention)
//   S_out = diag(exp(B_last)) S_in + sum_j (k_j ∘ exp(B_last - B_j))^T v_j   (state passing)
// The inter-chunk factors exp(B_i), exp(B_last - B_j) are <= 1. For A there are two forms:
//  - fast: A = (scale q ∘ exp(B)) (k ∘ exp(-B))^T, one matmul. exp(-B_j) grows up to
//    exp(span), span = max_d -B_last,d; used only while span <= kMaxFactoredSpan, where it
//    cannot overflow (each product keeps float relative accuracy: nothing is subtracted).
//  - safe (strong decay): sub-chunks of kSubChunk rows; diagonal sub-blocks use the pairwise
//    exp(B_i - B_j), i >= j; an off-diagonal block (rows I, columns j < first(I)) factors
//    through r = first(I): exp(B_i - B_r) * exp(B_r - B_j), both <= 1 (as fla does). Never
//    forms exp(+large), so gk = -20 per step is fine.
//
// Backward: the chunk-entry states are recomputed, then chunks are walked in reverse carrying
// dS. dgk comes from the identity
//   dgk_t = sum_{s>=t} (q_s ∘ dq_s - k_s ∘ dk_s) + rowsum(dS_T ∘ S_T)
// (gk enters only through exp(G_s - G_j); scaling q_s by exp(G_s) and k_j by exp(-G_j) formally
// moves all of it onto q and k). Terms that carry no decay cancel exactly in that sum (A_ii, and
// the last step's k^T v inside S_T against its gradient on k_{T-1}); they are kept out of it and
// added to dq, dk afterwards. Summing them in costs ~1e-3 relative accuracy on dgk under strong
// decay, where the true dgk is small.
//
// Threading: OpenMP over (b, h) pairs; each pair is computed and written by one thread, so the
// results do not depend on the thread count.
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"
#include "sim/ops/cpu/detail/small_gemm.h"

namespace statex {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowArr = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVecArr = Eigen::Array<float, 1, Eigen::Dynamic>;
using MatRef = Eigen::Ref<const RowMat>;
using StridedConst = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using StridedMut = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
using RowBlock = Eigen::Block<RowMat, Eigen::Dynamic, Eigen::Dynamic, true>;  // rows of a RowMat

constexpr int kSubChunk = 16;                // safe form: diagonal sub-block size
constexpr float kMaxFactoredSpan = 40.f;     // fast form while exp(-B) <= e^40 ~ 2e17

// The [T, width] slice of a [B, T, H, width] tensor belonging to head (b, h).
StridedConst head_view(const float* p, int b, int h, int T, int H, int width) {
  return StridedConst(p + (size_t(b) * T * H + h) * width, T, width,
                      Eigen::OuterStride<>(size_t(H) * width));
}
StridedMut head_view(float* p, int b, int h, int T, int H, int width) {
  return StridedMut(p + (size_t(b) * T * H + h) * width, T, width,
                    Eigen::OuterStride<>(size_t(H) * width));
}

void check_args(int chunk) {
  if (chunk <= 0) throw std::invalid_argument("gla: chunk length must be positive");
}

// Everything one thread needs for one (b, h) pair; chunk buffers are [L, *] and used through
// topRows(n) so a partial last chunk does not reallocate.
struct HeadScratch {
  int K = 0, V = 0, L = 0;
  RowMat Q, Kx, G, Vx, dO;  // gathered inputs [T, K] / [T, V]
  // per chunk
  RowArr Bc;        // [L, K] cumulative log decay B
  RowArr Eb;        // [L, K] exp(B)            <= 1
  RowArr Ed;        // [L, K] exp(B_last - B)   <= 1
  RowArr Eu;        // [L, K] exp(-B)           fast form only, <= e^kMaxFactoredSpan
  RowVecArr decay;  // [K] exp(B_last): the whole chunk's decay of the entering state
  RowMat Qd;        // [L, K] scale q ∘ exp(B)   (query seen from the chunk start)
  RowMat Kd;        // [L, K] k ∘ exp(B_last - B)  (key seen from the chunk end)
  RowMat Ku;        // [L, K] k ∘ exp(-B)        fast form only
  RowMat KuT;       // [K, L] Ku^T (so that A = Qd KuT is an in-place product)
  RowMat A, dA;     // [L, L] intra-chunk attention (lower triangle) and its gradient
  RowMat tmpK;      // [L, K]
  RowMat tmpV;      // [L, V]
  RowVecArr w;      // [K] pairwise decay in the safe form
  Eigen::Array<double, 1, Eigen::Dynamic> cumsum;  // [K] running sum of gk (prepare_chunk)
  bool factored = false;
  // per pair, backward
  RowMat dQ, dK;               // [T, K] local gradients (needed whole for dgk)
  RowMat VxT;                  // [V, T] v^T (dA = dO v^T as an in-place product)
  RowVecArr dk_last_undecayed;  // [K] dS_T v_{T-1}
  std::vector<float> dA_diag;   // [T] diagonal of dA
  std::vector<RowMat> states;   // chunk-entry states, each TRANSPOSED: [V, K]

  HeadScratch(int K_, int V_, int L_) : K(K_), V(V_), L(L_) {
    for (RowArr* a : {&Bc, &Eb, &Ed, &Eu}) a->resize(L, K);
    for (RowMat* m : {&Qd, &Kd, &Ku, &tmpK}) m->resize(L, K);
    KuT.resize(K, L);
    A.resize(L, L);
    dA.resize(L, L);
    tmpV.resize(L, V);
    decay.resize(K);
    w.resize(K);
    cumsum.resize(K);
  }

  void gather(const float* q, const float* k, const float* v, const float* gk, int b, int h,
              int T, int H) {
    Q = head_view(q, b, h, T, H, K);
    Kx = head_view(k, b, h, T, H, K);
    G = head_view(gk, b, h, T, H, K);
    Vx = head_view(v, b, h, T, H, V);
  }

  // Decay factors of the chunk at rows [t0, t0+n): Bc, Eb, Ed, decay, Kd, the fast-form Eu, Ku
  // (if the chunk's span allows it), and Qd when `with_queries`.
  void prepare_chunk(int t0, int n, float scale, bool with_queries) {
    cumsum.setZero();
    for (int i = 0; i < n; ++i) {  // cumulative sum in double: B reaches -1000 under strong decay
      cumsum += G.row(t0 + i).cast<double>().array();
      Bc.row(i) = cumsum.cast<float>();
    }
    auto B_last = Bc.row(n - 1);
    factored = -B_last.minCoeff() <= kMaxFactoredSpan;
    exp_of(Eb, n, [&](int i) { return Bc.row(i); });
    decay = Eb.row(n - 1);
    if (factored) {
      // Every factor is a normal float here (>= e^-40), so reciprocals and products keep
      // float relative accuracy and save two exp per element.
      Eu.topRows(n) = Eb.topRows(n).inverse();
      Ed.topRows(n) = Eu.topRows(n).rowwise() * decay;
      Ku.topRows(n) = (Kx.middleRows(t0, n).array() * Eu.topRows(n)).matrix();
      KuT.leftCols(n) = Ku.topRows(n).transpose();
    } else {
      exp_of(Ed, n, [&](int i) { return B_last - Bc.row(i); });
    }
    Kd.topRows(n) = (Kx.middleRows(t0, n).array() * Ed.topRows(n)).matrix();
    if (with_queries)
      Qd.topRows(n) = (scale * Q.middleRows(t0, n).array() * Eb.topRows(n)).matrix();
  }

  // out[0:n] = exp(arg(i)) row by row: rows are contiguous, so one flat vectorised exp.
  template <class RowExpr>
  static void exp_of(RowArr& out, int n, RowExpr arg) {
    for (int i = 0; i < n; ++i) out.row(i) = arg(i);
    Eigen::Map<Eigen::ArrayXf> flat(out.data(), Eigen::Index(n) * out.cols());
    flat = flat.exp();
  }
};

// Safe form, off-diagonal sub-block (rows I = [i0, i0+m), columns [0, i0)) factored through
// r = i0: Qr [m, K] = scale q_I ∘ exp(B_I - B_r), Kr [i0, K] = k_{<i0} ∘ exp(B_r - B_{<i0}).
struct OffDiagonalFactors {
  RowArr Eq, Ek;  // the decay factors, <= 1
  RowMat Qr, Kr;
  void compute(const MatRef& Qc, const MatRef& Kc, const RowArr& Bc, int i0, int m,
               float scale) {
    auto ref = Bc.row(i0);
    Eq = (Bc.middleRows(i0, m).rowwise() - ref).exp();
    Ek = (-(Bc.topRows(i0).rowwise() - ref)).exp();
    Qr = (scale * Qc.middleRows(i0, m).array() * Eq).matrix();
    Kr = (Kc.topRows(i0).array() * Ek).matrix();
  }
};

// The safe form's A (lower triangle incl. the diagonal; the strict upper part is not written),
// and with dQc/dKc the intra-chunk dq, dk from dA except the i == j terms.
void safe_intra_attention(HeadScratch& s, OffDiagonalFactors& f, const MatRef& Qc,
                          const MatRef& Kc, int n, float scale, RowBlock* dQc, RowBlock* dKc) {
  const RowArr& Bc = s.Bc;
  for (int i0 = 0; i0 < n; i0 += kSubChunk) {
    const int m = std::min(kSubChunk, n - i0);
    if (i0 > 0) {
      f.compute(Qc, Kc, Bc, i0, m, scale);
      s.A.block(i0, 0, m, i0).noalias() = f.Qr * f.Kr.transpose();
      if (dQc) {
        auto dA_block = s.dA.block(i0, 0, m, i0);
        dQc->middleRows(i0, m).array() += scale * (dA_block * f.Kr).array() * f.Eq;
        dKc->topRows(i0).array() += (dA_block.transpose() * f.Qr).array() * f.Ek;
      }
    }
    for (int i = i0; i < i0 + m; ++i) {
      s.A(i, i) = scale * Qc.row(i).dot(Kc.row(i));
      for (int j = i0; j < i; ++j) {
        s.w = (Bc.row(i) - Bc.row(j)).exp();
        s.A(i, j) = scale * (Qc.row(i).array() * Kc.row(j).array() * s.w).sum();
        if (dQc) {
          const float c = scale * s.dA(i, j);
          dQc->row(i).array() += c * Kc.row(j).array() * s.w;
          dKc->row(j).array() += c * Qc.row(i).array() * s.w;
        }
      }
    }
  }
}

// A[0:n, 0:n] in the chunk's form, lower triangular with its strict upper part set to zero (so
// tril(A) products use A as it is). With dQc/dKc non-null (backward, safe form only) also adds
// the intra-chunk dq, dk from dA, except the i == j terms.
void intra_attention(HeadScratch& s, OffDiagonalFactors& f, const MatRef& Qc, const MatRef& Kc,
                     int n, float scale, RowBlock* dQc = nullptr, RowBlock* dKc = nullptr) {
  auto A = s.A.topLeftCorner(n, n);
  if (s.factored) {
    small_gemm::mm(A, s.Qd.topRows(n), s.KuT.leftCols(n), false);  // all of Qd Ku^T
  } else {
    safe_intra_attention(s, f, Qc, Kc, n, scale, dQc, dKc);  // the lower triangle only
  }
  A.triangularView<Eigen::StrictlyUpper>().setZero();
}

}  // namespace

void CpuBackend::gla_forward(float* o, float* final_state, const float* q, const float* k,
                             const float* v, const float* gk, int B, int T, int H, int K, int V,
                             float scale, int chunk) {
  check_args(chunk);
  const int L = std::min(chunk, std::max(T, 1));
#pragma omp parallel if (B * H > 1)
  {
    HeadScratch s(K, V, L);
    OffDiagonalFactors f;
    RowMat S(K, V);
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      s.gather(q, k, v, gk, b, h, T, H);
      StridedMut O = head_view(o, b, h, T, H, V);
      S.setZero();
      for (int t0 = 0; t0 < T; t0 += L) {
        const int n = std::min(L, T - t0);
        MatRef Vc = s.Vx.middleRows(t0, n);
        s.prepare_chunk(t0, n, scale, true);
        intra_attention(s, f, s.Q.middleRows(t0, n), s.Kx.middleRows(t0, n), n, scale);
        // o = decayed query against the entering state + intra-chunk attention (tril(A) · v)
        auto Oc = O.middleRows(t0, n);
        small_gemm::mm(Oc, s.Qd.topRows(n), S, false);
        small_gemm::mm(Oc, s.A.topLeftCorner(n, n), Vc, true, /*lower_depth=*/true);
        // S = diag(exp(B_last)) S + Kd^T v
        S = s.decay.matrix().transpose().asDiagonal() * S;
        small_gemm::mm_tn(S, s.Kd.topRows(n), Vc, true);
      }
      if (final_state) Eigen::Map<RowMat>(final_state + size_t(bh) * K * V, K, V) = S;
    }
  }
}

void CpuBackend::gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                              const float* dfinal_state, const float* q, const float* k,
                              const float* v, const float* gk, int B, int T, int H, int K, int V,
                              float scale, int chunk, bool accumulate) {
  check_args(chunk);
  if ((!dq && !dk && !dv && !dgk) || T == 0) return;
  const int L = std::min(chunk, T);
  const int n_chunks = (T + L - 1) / L;
#pragma omp parallel if (B * H > 1)
  {
    HeadScratch s(K, V, L);
    s.states.assign(n_chunks + 1, RowMat(V, K));
    s.dA_diag.resize(T);
    s.dQ.resize(T, K);
    s.dK.resize(T, K);
    OffDiagonalFactors f;
    RowMat dS(K, V), S_T_decayed(V, K);
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      s.gather(q, k, v, gk, b, h, T, H);
      s.dO = head_view(dout, b, h, T, H, V);
      s.VxT = s.Vx.transpose();
      // Chunk-entry states (transposed, [V, K]): states[c] enters chunk c, states[n_chunks] = S_T.
      s.states[0].setZero();
      for (int c = 0; c < n_chunks; ++c) {
        const int t0 = c * L, n = std::min(L, T - t0);
        s.prepare_chunk(t0, n, scale, false);
        // S^T = S^T diag(exp(B_last)) + v^T Kd
        s.states[c + 1] = (s.states[c].array().rowwise() * s.decay).matrix();
        small_gemm::mm_tn(s.states[c + 1], s.Vx.middleRows(t0, n), s.Kd.topRows(n), true);
      }
      if (dfinal_state)
        dS = Eigen::Map<const RowMat>(dfinal_state + size_t(bh) * K * V, K, V);
      else
        dS.setZero();
      s.dQ.setZero();
      s.dK.setZero();
      for (int c = n_chunks - 1; c >= 0; --c) {
        const int t0 = c * L, n = std::min(L, T - t0);
        MatRef Qc = s.Q.middleRows(t0, n), Kc = s.Kx.middleRows(t0, n);
        MatRef Vc = s.Vx.middleRows(t0, n), dOc = s.dO.middleRows(t0, n);
        const RowMat& S_in_T = s.states[c];
        s.prepare_chunk(t0, n, scale, true);
        auto dQc = s.dQ.middleRows(t0, n);
        auto dKc = s.dK.middleRows(t0, n);
        // dA_ij = dO_i · v_j on the strict lower triangle; the diagonal is kept apart.
        auto dA = s.dA.topLeftCorner(n, n);
        small_gemm::mm(dA, dOc, s.VxT.middleCols(t0, n), false);
        for (int i = 0; i < n; ++i) s.dA_diag[t0 + i] = dA(i, i);
        dA.triangularView<Eigen::Upper>().setZero();
        // dq = scale exp(B) ∘ (dO S_in^T + intra), dk = exp(B_last - B) ∘ (v dS^T) + intra
        small_gemm::mm(s.tmpK.topRows(n), dOc, S_in_T, false);
        if (s.factored) {
          intra_attention(s, f, Qc, Kc, n, scale);
          small_gemm::mm(s.tmpK.topRows(n), dA, s.Ku.topRows(n), true, /*lower_depth=*/true);
          dQc.array() += scale * s.tmpK.topRows(n).array() * s.Eb.topRows(n);
          small_gemm::mm_tn(s.tmpK.topRows(n), dA, s.Qd.topRows(n), false);
          dKc.array() += s.tmpK.topRows(n).array() * s.Eu.topRows(n);
        } else {
          intra_attention(s, f, Qc, Kc, n, scale, &dQc, &dKc);
          dQc.array() += scale * s.tmpK.topRows(n).array() * s.Eb.topRows(n);
        }
        // The undecayed dS_T v_{T-1} on k_{T-1} stays out of the dgk sum (file comment).
        const bool hold_last = c == n_chunks - 1 && dfinal_state;
        const int m = hold_last ? n - 1 : n;
        s.tmpK.topRows(n).noalias() = Vc * dS.transpose();
        if (hold_last) s.dk_last_undecayed = s.tmpK.row(n - 1).array();
        dKc.topRows(m).array() += s.tmpK.topRows(m).array() * s.Ed.topRows(m);
        if (dv) {
          small_gemm::mm_tn(s.tmpV.topRows(n), s.A.topLeftCorner(n, n), dOc, false);  // A^T dO
          small_gemm::mm(s.tmpV.topRows(n), s.Kd.topRows(n), dS, true);
          store_grad(head_view(dv, b, h, T, H, V).middleRows(t0, n), s.tmpV.topRows(n), accumulate);
        }
        // dS_in = diag(exp(B_last)) dS_out + Qd^T dO
        dS = s.decay.matrix().transpose().asDiagonal() * dS;
        small_gemm::mm_tn(dS, s.Qd.topRows(n), dOc, true);
      }
      if (dgk) {
        // dgk_t = rowsum(dS_T ∘ S_T) + sum_{s>=t} (q_s ∘ dq_s - k_s ∘ dk_s), without the terms
        // that carry no decay and cancel exactly (file comment).
        Eigen::Array<double, 1, Eigen::Dynamic> acc =
            Eigen::Array<double, 1, Eigen::Dynamic>::Zero(K);
        if (dfinal_state) {
          // S_T without k_{T-1}^T v_{T-1}: the last chunk's update over its first n-1 rows.
          const int t0 = (n_chunks - 1) * L, n = T - t0;
          s.prepare_chunk(t0, n, scale, false);
          // (transposed, [V, K], like the stored states)
          S_T_decayed = (s.states[n_chunks - 1].array().rowwise() * s.decay).matrix();
          small_gemm::mm_tn(S_T_decayed, s.Vx.middleRows(t0, n - 1), s.Kd.topRows(n - 1), true);
          Eigen::Map<const RowMat> dST(dfinal_state + size_t(bh) * K * V, K, V);
          acc = (dST.array() * S_T_decayed.transpose().array())
                    .rowwise()
                    .sum()
                    .cast<double>()
                    .transpose();
        }
        StridedMut dG = head_view(dgk, b, h, T, H, K);
        for (int t = T - 1; t >= 0; --t) {
          acc += (s.Q.row(t).array() * s.dQ.row(t).array()).cast<double>() -
                 (s.Kx.row(t).array() * s.dK.row(t).array()).cast<double>();
          store_grad(dG.row(t).array(), acc.cast<float>(), accumulate);
        }
      }
      // The terms kept apart: dq_i += scale dA_ii k_i, dk_i += scale dA_ii q_i, and dS_T v_{T-1}.
      if (dfinal_state) s.dK.row(T - 1).array() += s.dk_last_undecayed;
      for (int t = 0; t < T; ++t) {
        const float c = scale * s.dA_diag[t];
        s.dQ.row(t) += c * s.Kx.row(t);
        s.dK.row(t) += c * s.Q.row(t);
      }
      if (dq) store_grad(head_view(dq, b, h, T, H, K), s.dQ, accumulate);
      if (dk) store_grad(head_view(dk, b, h, T, H, K), s.dK, accumulate);
    }
  }
}

}  // namespace statex
