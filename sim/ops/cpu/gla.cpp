// GLA chunked fast path on the CPU (DESIGN.md §1). Per (b, h) pair, sequential in time:
//   S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t,  o_t = (scale q_t) S_t.
// The sequence is cut into chunks of `chunk` rows (the last may be partial). Inside a chunk,
// with B_i = sum_{s<=i} gk_s (cumulative log decay from the chunk start, <= 0 and decreasing):
//   o_i   = scale q_i ∘ exp(B_i) · S_in  +  sum_{j<=i} A_ij v_j,
//   A_ij  = scale sum_d q_id k_jd exp(B_id - B_jd)            (intra-chunk decayed attention)
//   S_out = diag(exp(B_n)) S_in + sum_j (k_j ∘ exp(B_n - B_j))^T v_j   (state passing)
// Every exponent above is <= 0, so nothing overflows even for gk = -20 per step. For A the
// chunk is split into sub-chunks of kSubChunk rows: the diagonal sub-blocks use the pairwise
// exp(B_i - B_j); an off-diagonal block (rows I, columns j < first(I)) factors through the
// reference r = first(I): exp(B_i - B_r) * exp(B_r - B_j), both factors <= 1 (as fla does).
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

namespace statex {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowArr = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatRef = Eigen::Ref<const RowMat>;
using StridedConst = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using StridedMut = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

constexpr int kSubChunk = 16;  // diagonal blocks of the intra-chunk attention use pairwise exp

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

// Bc[0:n] = cumulative sum of gk rows inside the chunk (accumulated in double).  [n, K]
void chunk_cumsum(RowArr& Bc, const MatRef& Gc) {
  const int n = int(Gc.rows()), K = int(Gc.cols());
  Eigen::Array<double, 1, Eigen::Dynamic> acc = Eigen::Array<double, 1, Eigen::Dynamic>::Zero(K);
  for (int i = 0; i < n; ++i) {
    acc += Gc.row(i).cast<double>().array();
    Bc.row(i) = acc.cast<float>();
  }
}

// S_out [K, V] = diag(exp(B_last)) S_in + sum_{j<m} (k_j ∘ exp(B_last - B_j))^T v_j, where
// B_last = Bc.row(last). m = last + 1 is the ordinary chunk update; m = last leaves the
// undecayed k_last^T v_last term out (used for dgk, see gla_backward).
void pass_state(RowMat& S_out, const RowMat& S_in, const MatRef& Kc, const MatRef& Vc,
                const RowArr& Bc, int last, int m) {
  auto B_last = Bc.row(last);
  RowMat kdec = (Kc.topRows(m).array() * (-(Bc.topRows(m).rowwise() - B_last)).exp()).matrix();
  S_out.noalias() = B_last.exp().matrix().transpose().asDiagonal() * S_in;
  S_out.noalias() += kdec.transpose() * Vc.topRows(m);
}

// The per-thread working set for one (b, h) pair.
struct HeadScratch {
  RowMat Q, Kx, G, Vx, dO;  // gathered inputs [T, K] / [T, V]
  RowArr Bc;                // [L, K] cumulative log decay in the current chunk
  RowMat A, dA;             // [L, L] intra-chunk attention and its gradient
  RowMat dQ, dK;            // [T, K] local gradients (needed whole for dgk)
  RowMat dVc;               // [L, V]
  Eigen::Array<float, 1, Eigen::Dynamic> dk_last_undecayed;  // [K] dS_T v_{T-1}
  std::vector<float> dA_diag;  // [T] diagonal of dA, added to dq/dk after the dgk identity
  std::vector<RowMat> states;  // chunk-entry states, each [K, V]

  void gather(const float* q, const float* k, const float* v, const float* gk, int b, int h,
              int T, int H, int K, int V) {
    Q = head_view(q, b, h, T, H, K);
    Kx = head_view(k, b, h, T, H, K);
    G = head_view(gk, b, h, T, H, K);
    Vx = head_view(v, b, h, T, H, V);
  }
};

// Off-diagonal sub-block (rows I = [i0, i0+m), columns [0, i0)) factors through r = i0.
// Qr [m, K] = scale q_I ∘ exp(B_I - B_r), Kr [i0, K] = k_{<i0} ∘ exp(B_r - B_{<i0}).
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

// A[0:n, 0:n] = scale (q_i · (k_j ∘ exp(B_i - B_j))) for j <= i, 0 above the diagonal.
void intra_attention(RowMat& A, OffDiagonalFactors& f, const MatRef& Qc, const MatRef& Kc,
                     const RowArr& Bc, int n, float scale) {
  A.topLeftCorner(n, n).setZero();
  for (int i0 = 0; i0 < n; i0 += kSubChunk) {
    const int m = std::min(kSubChunk, n - i0);
    if (i0 > 0) {
      f.compute(Qc, Kc, Bc, i0, m, scale);
      A.block(i0, 0, m, i0).noalias() = f.Qr * f.Kr.transpose();
    }
    for (int i = i0; i < i0 + m; ++i)
      for (int j = i0; j <= i; ++j)
        A(i, j) = scale * (Qc.row(i).array() * Kc.row(j).array() *
                           (Bc.row(i) - Bc.row(j)).exp()).sum();
  }
}

// Recomputes A (as intra_attention) and adds the intra-chunk parts of dq, dk given dA, except
// the i == j terms (see the file comment). dQc, dKc [n, K] are blocks of the local gradients.
template <class DQ, class DK>
void intra_attention_backward(RowMat& A, OffDiagonalFactors& f, DQ dQc, DK dKc,
                              const RowMat& dA, const MatRef& Qc, const MatRef& Kc,
                              const RowArr& Bc, int n, float scale) {
  A.topLeftCorner(n, n).setZero();
  for (int i0 = 0; i0 < n; i0 += kSubChunk) {
    const int m = std::min(kSubChunk, n - i0);
    if (i0 > 0) {
      f.compute(Qc, Kc, Bc, i0, m, scale);
      auto dA_block = dA.block(i0, 0, m, i0);
      A.block(i0, 0, m, i0).noalias() = f.Qr * f.Kr.transpose();
      dQc.middleRows(i0, m).array() += scale * (dA_block * f.Kr).array() * f.Eq;
      dKc.topRows(i0).array() += (dA_block.transpose() * f.Qr).array() * f.Ek;
    }
    for (int i = i0; i < i0 + m; ++i) {
      A(i, i) = scale * Qc.row(i).dot(Kc.row(i));
      for (int j = i0; j < i; ++j) {
        Eigen::Array<float, 1, Eigen::Dynamic> w = (Bc.row(i) - Bc.row(j)).exp();
        A(i, j) = scale * (Qc.row(i).array() * Kc.row(j).array() * w).sum();
        const float c = scale * dA(i, j);
        dQc.row(i).array() += c * Kc.row(j).array() * w;
        dKc.row(j).array() += c * Qc.row(i).array() * w;
      }
    }
  }
}

}  // namespace

void CpuBackend::gla_forward(float* o, float* final_state, const float* q, const float* k,
                             const float* v, const float* gk, int B, int T, int H, int K, int V,
                             float scale, int chunk) {
  check_args(chunk);
  const int L = std::min(chunk, std::max(T, 1));
#pragma omp parallel if (B * H > 1)
  {
    HeadScratch s;
    s.Bc.resize(L, K);
    s.A.resize(L, L);
    OffDiagonalFactors f;
    RowMat S(K, V), S_next(K, V);
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      s.gather(q, k, v, gk, b, h, T, H, K, V);
      StridedMut O = head_view(o, b, h, T, H, V);
      S.setZero();
      for (int t0 = 0; t0 < T; t0 += L) {
        const int n = std::min(L, T - t0);
        MatRef Qc = s.Q.middleRows(t0, n), Kc = s.Kx.middleRows(t0, n);
        MatRef Vc = s.Vx.middleRows(t0, n);
        chunk_cumsum(s.Bc, s.G.middleRows(t0, n));
        auto Bc = s.Bc.topRows(n);
        intra_attention(s.A, f, Qc, Kc, s.Bc, n, scale);
        // o = inter-chunk (decayed query against the entering state) + intra-chunk attention
        RowMat Qg = (scale * Qc.array() * Bc.exp()).matrix();
        O.middleRows(t0, n).noalias() = Qg * S;
        O.middleRows(t0, n).noalias() +=
            s.A.topLeftCorner(n, n).triangularView<Eigen::Lower>() * Vc;
        pass_state(S_next, S, Kc, Vc, s.Bc, n - 1, n);
        S.swap(S_next);
      }
      if (final_state)
        Eigen::Map<RowMat>(final_state + size_t(bh) * K * V, K, V) = S;
    }
  }
}

void CpuBackend::gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                              const float* dfinal_state, const float* q, const float* k,
                              const float* v, const float* gk, int B, int T, int H, int K, int V,
                              float scale, int chunk) {
  check_args(chunk);
  if (!dq && !dk && !dv && !dgk) return;
  const int L = std::min(chunk, std::max(T, 1));
  const int n_chunks = (T + L - 1) / L;
#pragma omp parallel if (B * H > 1)
  {
    HeadScratch s;
    s.Bc.resize(L, K);
    s.A.resize(L, L);
    s.dA.resize(L, L);
    s.states.assign(n_chunks + 1, RowMat(K, V));
    s.dA_diag.resize(T);
    OffDiagonalFactors f;
    RowMat dS(K, V);
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      s.gather(q, k, v, gk, b, h, T, H, K, V);
      s.dO = head_view(dout, b, h, T, H, V);
      // Chunk-entry states: states[c] enters chunk c, states[n_chunks] = S_T.
      s.states[0].setZero();
      for (int c = 0; c < n_chunks; ++c) {
        const int t0 = c * L, n = std::min(L, T - t0);
        chunk_cumsum(s.Bc, s.G.middleRows(t0, n));
        pass_state(s.states[c + 1], s.states[c], s.Kx.middleRows(t0, n),
                   s.Vx.middleRows(t0, n), s.Bc, n - 1, n);
      }
      if (dfinal_state)
        dS = Eigen::Map<const RowMat>(dfinal_state + size_t(bh) * K * V, K, V);
      else
        dS.setZero();
      s.dQ.setZero(T, K);
      s.dK.setZero(T, K);
      StridedMut dVh = dv ? head_view(dv, b, h, T, H, V) : StridedMut(nullptr, 0, 0, Eigen::OuterStride<>(1));
      for (int c = n_chunks - 1; c >= 0; --c) {
        const int t0 = c * L, n = std::min(L, T - t0);
        MatRef Qc = s.Q.middleRows(t0, n), Kc = s.Kx.middleRows(t0, n);
        MatRef Vc = s.Vx.middleRows(t0, n), dOc = s.dO.middleRows(t0, n);
        const RowMat& S_in = s.states[c];
        chunk_cumsum(s.Bc, s.G.middleRows(t0, n));
        auto Bc = s.Bc.topRows(n);
        auto last = Bc.row(n - 1);
        // dA_ij = dO_i · v_j for j <= i (the upper triangle is never read)
        s.dA.topLeftCorner(n, n).noalias() = dOc * Vc.transpose();
        for (int i = 0; i < n; ++i) s.dA_diag[t0 + i] = s.dA(i, i);
        intra_attention_backward(s.A, f, s.dQ.middleRows(t0, n), s.dK.middleRows(t0, n), s.dA,
                                 Qc, Kc, s.Bc, n, scale);
        // inter-chunk: o_i += scale (q_i ∘ exp(B_i)) S_in;  S_out = ... + kdec^T v
        RowArr Eq = Bc.exp();
        RowArr Ek = (-(Bc.rowwise() - last)).exp();
        s.dQ.middleRows(t0, n).array() += scale * (dOc * S_in.transpose()).array() * Eq;
        if (c == n_chunks - 1 && dfinal_state) {
          // The undecayed dS_T v_{T-1} on k_{T-1} is kept apart until dgk is done (see below).
          s.dk_last_undecayed = (Vc.row(n - 1) * dS.transpose()).array();
          s.dK.middleRows(t0, n - 1).array() +=
              (Vc.topRows(n - 1) * dS.transpose()).array() * Ek.topRows(n - 1);
        } else {
          s.dK.middleRows(t0, n).array() += (Vc * dS.transpose()).array() * Ek;
        }
        if (dv) {
          RowMat kdec = (Kc.array() * Ek).matrix();
          s.dVc.noalias() = s.A.topLeftCorner(n, n).triangularView<Eigen::Lower>().transpose() * dOc;
          s.dVc.noalias() += kdec * dS;
          dVh.middleRows(t0, n) += s.dVc;
        }
        // dS_in = diag(exp(B_n)) dS_out + (scale q ∘ exp(B))^T dO
        RowMat Qg = (scale * Qc.array() * Eq).matrix();
        dS = last.exp().matrix().transpose().asDiagonal() * dS;
        dS.noalias() += Qg.transpose() * dOc;
      }
      if (dgk && T > 0) {
        // dgk_t = rowsum(dS_T ∘ S_T) + sum_{s>=t} (q_s ∘ dq_s - k_s ∘ dk_s), without the terms
        // that carry no decay and cancel exactly: A_ii (above) and, when dS_T is given, the
        // k_{T-1}^T v_{T-1} part of S_T against its gradient dS_T v_{T-1} on k_{T-1}.
        Eigen::Array<double, 1, Eigen::Dynamic> acc =
            Eigen::Array<double, 1, Eigen::Dynamic>::Zero(K);
        if (dfinal_state) {
          Eigen::Map<const RowMat> dST(dfinal_state + size_t(bh) * K * V, K, V);
          const int t0 = (n_chunks - 1) * L, n = T - t0;
          chunk_cumsum(s.Bc, s.G.middleRows(t0, n));
          RowMat S_T_decayed(K, V);  // S_T without k_{T-1}^T v_{T-1}
          pass_state(S_T_decayed, s.states[n_chunks - 1], s.Kx.middleRows(t0, n),
                     s.Vx.middleRows(t0, n), s.Bc, n - 1, n - 1);
          acc = (dST.array() * S_T_decayed.array()).rowwise().sum().cast<double>().transpose();
        }
        StridedMut dG = head_view(dgk, b, h, T, H, K);
        for (int t = T - 1; t >= 0; --t) {
          acc += (s.Q.row(t).array() * s.dQ.row(t).array()).cast<double>() -
                 (s.Kx.row(t).array() * s.dK.row(t).array()).cast<double>();
          dG.row(t).array() += acc.cast<float>();
        }
      }
      // The terms left out above: dq_i += scale dA_ii k_i, dk_i += scale dA_ii q_i, and the
      // undecayed final-state gradient on k_{T-1}.
      if (dfinal_state && T > 0) s.dK.row(T - 1).array() += s.dk_last_undecayed;
      for (int t = 0; t < T; ++t) {
        const float c = scale * s.dA_diag[t];
        if (dq) s.dQ.row(t) += c * s.Kx.row(t);
        if (dk) s.dK.row(t) += c * s.Q.row(t);
      }
      if (dq) head_view(dq, b, h, T, H, K) += s.dQ;
      if (dk) head_view(dk, b, h, T, H, K) += s.dK;
    }
  }
}

}  // namespace statex
