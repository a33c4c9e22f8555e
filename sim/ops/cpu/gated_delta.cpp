// Chunked gated delta rule (the WY / UT-transform form of fla's chunk_gated_delta_rule), CPU.
// Contract: sim/core/backend.h (gated_delta_*); reference: gated_delta_reference.cpp.
//
// Within a chunk of L steps starting from state S (K x V), with G_i = g_0 + ... + g_i (the
// chunk-local cumulative log decay), gamma_i = exp(G_i), and the "new values"
// delta_i = beta_i (v_i - a_i S_{i-1}^T k_i), the recurrence unrolls to
//   S_i = gamma_i S + sum_{j<=i} exp(G_i - G_j) k_j delta_j^T,
// so delta solves the unit lower-triangular system (the UT transform)
//   (I + A) delta = beta V - diag(beta gamma) K S,  A_ij = beta_i exp(G_i - G_j) k_i.k_j (j < i)
// i.e. delta = U - W S with U = (I + A)^-1 diag(beta) V, W = (I + A)^-1 diag(beta gamma) K, and
//   O   = scale (diag(gamma) Q S + M delta),  M_ij = q_i.k_j exp(G_i - G_j) (j <= i)
//   S' = gamma_{L-1} S + (diag(exp(G_{L-1} - G_j)) K)^T delta.
// Every exponent is a difference G_i - G_j with j <= i or G_i itself (both <= 0), so no factor
// exceeds one however strong the decay: decays stay in log space and nothing overflows.
//
// The backward walks the chunks in reverse with dS = dL/dS', recomputing each chunk from its
// starting state (saved by a forward pass over the chunks), and differentiates the formulas
// above; the triangular solves are differentiated by a solve with (I + A)^T:
//   dX = (I + A)^-T [dU | dW],  dA = -(dX_U U^T + dX_W W^T) (strict lower part).
// Gradients wrt G are collected per position and turned into dg by a reverse cumulative sum.
//
// Threading: one (batch, head) pair per task; a task's arithmetic does not depend on the thread
// count, so neither do the results.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"

namespace statex {
namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;
using Strided = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
using ConstStrided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;

// Sizes and strides of one call.
struct Dims {
  int B, T, H, K, V, chunk;
  float scale;
  size_t row(int b, int t, int h, int width) const {
    return ((size_t(b) * T + t) * H + h) * size_t(width);
  }
  size_t gate(int b, int t, int h) const { return (size_t(b) * T + t) * H + h; }
};

// The recomputable quantities of one chunk, [L, .] with L the chunk's length.
struct Chunk {
  int L = 0;
  Mat q, k, v;  // [L, K], [L, K], [L, V]
  Vec beta, G;  // [L] beta, cumulative log decay
  Vec gamma;    // [L] exp(G)
  Vec tail;     // [L] exp(G_{L-1} - G_j)
  Mat Gam;      // [L, L] lower incl. diagonal: exp(G_i - G_j), zero above
  Mat A;        // [L, L] strictly lower: beta_i exp(G_i - G_j) k_i.k_j
  Mat KK;       // [L, L] k_i.k_j
  Mat M;        // [L, L] lower incl. diagonal: q_i.k_j exp(G_i - G_j)
  Mat U, W;     // [L, V], [L, K]

  // Loads chunk [t0, t0 + L) of pair (b, h) and builds everything that does not depend on S.
  void load(const Dims& d, int b, int h, int t0, int len, const float* q_, const float* k_,
            const float* v_, const float* g_, const float* beta_) {
    L = len;
    const int sk = d.H * d.K, sv = d.H * d.V;
    q = ConstStrided(q_ + d.row(b, t0, h, d.K), L, d.K, Eigen::OuterStride<>(sk));
    k = ConstStrided(k_ + d.row(b, t0, h, d.K), L, d.K, Eigen::OuterStride<>(sk));
    v = ConstStrided(v_ + d.row(b, t0, h, d.V), L, d.V, Eigen::OuterStride<>(sv));
    beta.resize(L);
    G.resize(L);
    gamma.resize(L);
    tail.resize(L);
    double cum = 0;
    for (int i = 0; i < L; ++i) {
      const size_t gi = d.gate(b, t0 + i, h);
      cum += double(g_[gi]);
      G[i] = float(cum);
      beta[i] = beta_[gi];
    }
    for (int i = 0; i < L; ++i) {
      gamma[i] = std::exp(G[i]);
      tail[i] = std::exp(G[L - 1] - G[i]);
    }
    Gam.setZero(L, L);
    for (int i = 0; i < L; ++i)
      for (int j = 0; j <= i; ++j) Gam(i, j) = std::exp(G[i] - G[j]);
    KK.noalias() = k * k.transpose();
    M.noalias() = q * k.transpose();
    M.array() *= Gam.array();
    A = (beta.asDiagonal() * KK).cwiseProduct(Gam).triangularView<Eigen::StrictlyLower>();
    // U = (I + A)^-1 diag(beta) V, W = (I + A)^-1 diag(beta gamma) K by forward substitution.
    U = beta.asDiagonal() * v;
    W = (beta.array() * gamma.array()).matrix().asDiagonal() * k;
    solve_lower(U);
    solve_lower(W);
  }

  // X <- (I + A)^-1 X (forward substitution; A strictly lower).
  void solve_lower(Mat& X) const {
    for (int i = 1; i < L; ++i) X.row(i).noalias() -= A.row(i).head(i) * X.topRows(i);
  }
  // X <- (I + A)^-T X (back substitution).
  void solve_upper_transposed(Mat& X) const {
    for (int i = L - 2; i >= 0; --i)
      X.row(i).noalias() -= A.col(i).tail(L - 1 - i).transpose() * X.bottomRows(L - 1 - i);
  }
};

// Forward over the chunks of pair (b, h). S [K, V] ends as the final state. When `starts` is
// given, it receives each chunk's starting state ([nchunks * K, V]); when `o` is given, the
// outputs are written.
void forward_pair(const Dims& d, int b, int h, float* o, Mat& S, Mat* starts, const float* q,
                  const float* k, const float* v, const float* g, const float* beta, Chunk& c,
                  Mat& delta) {
  S.setZero(d.K, d.V);
  for (int t0 = 0, ci = 0; t0 < d.T; t0 += d.chunk, ++ci) {
    const int L = std::min(d.chunk, d.T - t0);
    if (starts) starts->middleRows(size_t(ci) * d.K, d.K) = S;
    c.load(d, b, h, t0, L, q, k, v, g, beta);
    delta = c.U;
    delta.noalias() -= c.W * S;
    if (o) {
      Strided out(o + d.row(b, t0, h, d.V), L, d.V, Eigen::OuterStride<>(d.H * d.V));
      Mat qs = c.gamma.asDiagonal() * c.q;
      Mat acc = qs * S;
      acc.noalias() += c.M * delta;
      out = d.scale * acc;
    }
    S *= c.gamma[L - 1];
    S.noalias() += (c.tail.asDiagonal() * c.k).transpose() * delta;
  }
}

}  // namespace

void CpuBackend::gated_delta_forward(float* o, float* final_state, const float* q, const float* k,
                                     const float* v, const float* g, const float* beta, int B,
                                     int T, int H, int K, int V, float scale, int chunk) {
  const Dims d{B, T, H, K, V, std::max(1, chunk), scale};
#pragma omp parallel
  {
    Chunk c;
    Mat S, delta;
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      forward_pair(d, b, h, o, S, nullptr, q, k, v, g, beta, c, delta);
      if (final_state) Eigen::Map<Mat>(final_state + size_t(bh) * K * V, K, V) = S;
    }
  }
}

void CpuBackend::gated_delta_backward(float* dq, float* dk, float* dv, float* dg, float* dbeta,
                                      const float* dout, const float* dfinal_state, const float* q,
                                      const float* k, const float* v, const float* g,
                                      const float* beta, int B, int T, int H, int K, int V,
                                      float scale, int chunk, bool accumulate) {
  const Dims d{B, T, H, K, V, std::max(1, chunk), scale};
  const int nchunks = (T + d.chunk - 1) / d.chunk;
#pragma omp parallel
  {
    Chunk c;
    Mat S, delta, starts(size_t(nchunks) * K, V), dS, dSp, ddelta, dM, P, dQ, dK, dV, dKt, dXU, dXW,
        dA, dKK, Kt, O1;
    Vec dB, e;
    Eigen::VectorXd dG;  // dL/dG in double: its terms cancel heavily under strong decay
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      forward_pair(d, b, h, nullptr, S, &starts, q, k, v, g, beta, c, delta);
      if (dfinal_state)
        dS = Eigen::Map<const Mat>(dfinal_state + size_t(bh) * K * V, K, V);
      else
        dS.setZero(K, V);
      for (int ci = nchunks - 1; ci >= 0; --ci) {
        const int t0 = ci * d.chunk, L = std::min(d.chunk, T - t0);
        const Mat S0 = starts.middleRows(size_t(ci) * K, K);
        c.load(d, b, h, t0, L, q, k, v, g, beta);
        delta = c.U;
        delta.noalias() -= c.W * S0;
        const ConstStrided dO(dout + d.row(b, t0, h, V), L, V, Eigen::OuterStride<>(H * V));
        Kt = c.tail.asDiagonal() * c.k;  // [L, K]
        dG.setZero(L);
        dB.setZero(L);
        // ---- O = scale (diag(gamma) Q S0 + M delta) ----
        ddelta.noalias() = d.scale * (c.M.transpose() * dO);
        ddelta.noalias() += Kt * dS;
        dM.noalias() = d.scale * (dO * delta.transpose());
        dM = dM.triangularView<Eigen::Lower>();
        // dL/d(G_i - G_j) of each M entry. The diagonal's decay exp(0) has no gradient; leaving
        // it out keeps its O(1) terms from cancelling (inexactly) between row and column sums.
        P = dM.cwiseProduct(c.M).triangularView<Eigen::StrictlyLower>();
        dG += (P.rowwise().sum() - P.colwise().sum().transpose()).cast<double>();
        dM.array() *= c.Gam.array();
        dQ.noalias() = dM * c.k;
        dK.noalias() = dM.transpose() * c.q;
        dQ.noalias() += d.scale * (c.gamma.asDiagonal() * (dO * S0.transpose()));
        O1.noalias() = d.scale * (c.gamma.asDiagonal() * (c.q * S0));
        dG += dO.cwiseProduct(O1).rowwise().sum().cast<double>();
        // ---- S' = gamma_{L-1} S0 + Kt^T delta ----
        dSp.noalias() = d.scale * (c.q.transpose() * (c.gamma.asDiagonal() * dO));
        dSp += c.gamma[L - 1] * dS;
        dSp.noalias() -= c.W.transpose() * ddelta;
        dKt.noalias() = delta * dS.transpose();  // [L, K]
        e = c.tail.cwiseProduct(dKt.cwiseProduct(c.k).rowwise().sum());
        dK += c.tail.asDiagonal() * dKt;
        e[L - 1] = 0.f;  // exp(G_{L-1} - G_{L-1}) = 1: no gradient (and no inexact cancelling)
        dG -= e.cast<double>();
        dG[L - 1] += double(e.sum()) + double(c.gamma[L - 1] * dS.cwiseProduct(S0).sum());
        // ---- delta = U - W S0, U and W through the UT transform ----
        dXU = ddelta;
        dXW.noalias() = -ddelta * S0.transpose();
        c.solve_upper_transposed(dXU);
        c.solve_upper_transposed(dXW);
        dA.noalias() = -dXU * c.U.transpose();
        dA.noalias() -= dXW * c.W.transpose();
        dA = dA.triangularView<Eigen::StrictlyLower>();
        dV = c.beta.asDiagonal() * dXU;
        dB += dXU.cwiseProduct(c.v).rowwise().sum();
        const Vec r = dXW.cwiseProduct(c.k).rowwise().sum();  // d(beta_i gamma_i) / ...
        dK += (c.beta.array() * c.gamma.array()).matrix().asDiagonal() * dXW;
        dB += c.gamma.cwiseProduct(r);
        dG += c.beta.cwiseProduct(c.gamma).cwiseProduct(r).cast<double>();
        // A_ij = beta_i Gam_ij KK_ij (j < i).
        P = dA.cwiseProduct(c.A);
        dG += (P.rowwise().sum() - P.colwise().sum().transpose()).cast<double>();
        dA.array() *= c.Gam.array();
        dB += dA.cwiseProduct(c.KK).rowwise().sum();
        dKK = c.beta.asDiagonal() * dA;
        dK.noalias() += dKK * c.k;
        dK.noalias() += dKK.transpose() * c.k;
        // ---- store: dg is the reverse cumulative sum of dG ----
        if (dq) {
          Strided out(dq + d.row(b, t0, h, K), L, K, Eigen::OuterStride<>(H * K));
          store_grad(out, dQ, accumulate);
        }
        if (dk) {
          Strided out(dk + d.row(b, t0, h, K), L, K, Eigen::OuterStride<>(H * K));
          store_grad(out, dK, accumulate);
        }
        if (dv) {
          Strided out(dv + d.row(b, t0, h, V), L, V, Eigen::OuterStride<>(H * V));
          store_grad(out, dV, accumulate);
        }
        double rev = 0;
        for (int i = L - 1; i >= 0; --i) {
          rev += dG[i];
          const size_t gi = d.gate(b, t0 + i, h);
          if (dg) store_grad(dg[gi], float(rev), accumulate);
          if (dbeta) store_grad(dbeta[gi], dB[i], accumulate);
        }
        dS.swap(dSp);
      }
    }
  }
}

}  // namespace statex
