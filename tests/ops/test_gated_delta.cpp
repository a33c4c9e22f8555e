// Gated DeltaNet CPU ops: the per-timestep gated delta rule against finite differences, the
// chunked WY / UT-transform fast path against it (forward and every gradient; weak and strong
// decay, beta near 0 and near 1 (and 2, allow_neg_eigval), T not a multiple of the chunk), the
// accumulate / overwrite contract, thread-count independence. The gate op and the L2 norm have
// their own stem files (test_gated_delta_gate.cpp, test_l2norm.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/gated_delta_reference.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using testing::compare;
using testing::dot;
using testing::fd_check;
using testing::random_vector;

struct Shape {
  int B, T, H, K, V;
  size_t qk() const { return size_t(B) * T * H * K; }
  size_t vo() const { return size_t(B) * T * H * V; }
  size_t bth() const { return size_t(B) * T * H; }
  size_t state() const { return size_t(B) * H * K * V; }
  float scale() const { return 1.f / std::sqrt(float(K)); }
};

// L2-normalises each K-row of x in place (the model feeds the op L2-normalised q and k).
void l2_rows(std::vector<float>& x, int K) {
  for (size_t r = 0; r < x.size() / K; ++r) {
    double ss = 0;
    for (int i = 0; i < K; ++i) ss += double(x[r * K + i]) * x[r * K + i];
    for (int i = 0; i < K; ++i) x[r * K + i] = float(x[r * K + i] / std::sqrt(ss + 1e-6));
  }
}

// Inputs (k L2-normalised, q not: the op must not rely on it) and upstream gradients.
struct Inputs {
  std::vector<float> q, k, v, g, beta, dout, dfinal;
  Inputs(const Shape& s, float g_lo, float g_hi, float b_lo, float b_hi, unsigned seed)
      : q(random_vector(s.qk(), seed + 1)),
        k(random_vector(s.qk(), seed + 2)),
        v(random_vector(s.vo(), seed + 3)),
        g(random_vector(s.bth(), seed + 4, g_lo, g_hi)),
        beta(random_vector(s.bth(), seed + 5, b_lo, b_hi)),
        dout(random_vector(s.vo(), seed + 6)),
        dfinal(random_vector(s.state(), seed + 7)) {
    l2_rows(k, s.K);
  }
};

struct Grads {
  std::vector<float> dq, dk, dv, dg, dbeta;
  explicit Grads(const Shape& s)
      : dq(s.qk()), dk(s.qk()), dv(s.vo()), dg(s.bth()), dbeta(s.bth()) {}
};

void reference_backward(const Shape& s, const Inputs& in, const float* dfinal, Grads& g) {
  reference::gated_delta_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.dg.data(),
                                  g.dbeta.data(), in.dout.data(), dfinal, in.q.data(), in.k.data(),
                                  in.v.data(), in.g.data(), in.beta.data(), s.B, s.T, s.H, s.K, s.V,
                                  s.scale());
}

// ---------------- reference vs finite differences ----------------

TEST(GatedDeltaReference, GradientsMatchFiniteDifferences) {
  const Shape s{2, 13, 2, 5, 7};
  Inputs in(s, -1.f, -0.02f, 0.05f, 0.95f, 11);
  std::vector<float> o(s.vo()), fs(s.state());
  // L = <o, dout> + <final_state, dfinal>: both upstream gradients are exercised.
  auto loss = [&] {
    reference::gated_delta_forward(o.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(),
                                   in.g.data(), in.beta.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
    return dot(o, in.dout) + dot(fs, in.dfinal);
  };
  Grads g(s);
  reference_backward(s, in, in.dfinal.data(), g);
  const double h = 1e-2;
  EXPECT_FD_OK(fd_check(loss, in.q, g.dq, h), "dq");
  EXPECT_FD_OK(fd_check(loss, in.k, g.dk, h), "dk");
  EXPECT_FD_OK(fd_check(loss, in.v, g.dv, h), "dv");
  EXPECT_FD_OK(fd_check(loss, in.g, g.dg, h), "dg");
  EXPECT_FD_OK(fd_check(loss, in.beta, g.dbeta, h), "dbeta");
}

// One step by hand: S_1 = beta k v^T (S_0 = 0), S_2 = a S_1 + beta2 k2 (v2 - a S_1^T k2)^T.
TEST(GatedDeltaReference, TwoStepsMatchTheFormula) {
  const Shape s{1, 2, 1, 2, 1};
  std::vector<float> q = {1.f, 0.5f, -0.25f, 2.f}, k = {0.6f, 0.8f, 1.f, 0.f}, v = {3.f, -1.f};
  std::vector<float> g = {-0.5f, -0.25f}, beta = {0.5f, 0.75f}, o(2), fs(2);
  reference::gated_delta_forward(o.data(), fs.data(), q.data(), k.data(), v.data(), g.data(),
                                 beta.data(), s.B, s.T, s.H, s.K, s.V, 1.f);
  const double a1 = std::exp(-0.5), a2 = std::exp(-0.25);
  double S1[2] = {0.5 * 0.6 * 3 * a1 / a1, 0.5 * 0.8 * 3};  // a1 S_0 = 0
  EXPECT_NEAR(o[0], 1.0 * S1[0] + 0.5 * S1[1], 1e-6);
  const double u = a2 * (S1[0] * 1.0 + S1[1] * 0.0);
  const double S2[2] = {a2 * S1[0] + 0.75 * 1.0 * (-1.0 - u), a2 * S1[1]};
  EXPECT_NEAR(o[1], -0.25 * S2[0] + 2.0 * S2[1], 1e-6);
  EXPECT_NEAR(fs[0], S2[0], 1e-6);
  EXPECT_NEAR(fs[1], S2[1], 1e-6);
}

// ---------------- chunked vs reference ----------------

struct ChunkCase {
  const char* name;
  Shape shape;
  float g_lo, g_hi, b_lo, b_hi;
  int chunk;
};

// Relative RMS error against the double-accumulated reference: the UT transform's triangular
// solves and chunk products in fp32 give ~1e-7..1e-6; we allow 1e-5 forward and 1e-4 backward
// (dg is a reverse cumulative sum of differences and loses a little to cancellation).
constexpr double kFwdTol = 1e-5, kBwdTol = 1e-4;

void check_chunked(const ChunkCase& c) {
  SCOPED_TRACE(c.name);
  const Shape& s = c.shape;
  Inputs in(s, c.g_lo, c.g_hi, c.b_lo, c.b_hi, 100 + c.chunk + s.T);
  CpuBackend cpu;
  std::vector<float> o_ref(s.vo()), fs_ref(s.state()), o(s.vo()), fs(s.state());
  reference::gated_delta_forward(o_ref.data(), fs_ref.data(), in.q.data(), in.k.data(), in.v.data(),
                                 in.g.data(), in.beta.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
  cpu.gated_delta_forward(o.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(), in.g.data(),
                          in.beta.data(), s.B, s.T, s.H, s.K, s.V, s.scale(), c.chunk);
  double worst_fwd = 0, worst_bwd = 0;  // printed to show the margin
  for (auto [what, got, ref] : {std::tuple{"o", &o, &o_ref}, std::tuple{"final", &fs, &fs_ref}}) {
    auto e = compare(*got, *ref);
    worst_fwd = std::isnan(e.rel_rms) ? e.rel_rms : std::max(worst_fwd, e.rel_rms);
    EXPECT_LT(e.rel_rms, kFwdTol) << what << ": worst " << e.worst << " got " << (*got)[e.worst]
                                  << " ref " << (*ref)[e.worst];
  }
  for (bool with_dfinal : {true, false}) {
    SCOPED_TRACE(with_dfinal ? "with dfinal_state" : "dfinal_state = nullptr");
    const float* dfinal = with_dfinal ? in.dfinal.data() : nullptr;
    Grads ref(s), got(s);
    reference_backward(s, in, dfinal, ref);
    cpu.gated_delta_backward(got.dq.data(), got.dk.data(), got.dv.data(), got.dg.data(),
                             got.dbeta.data(), in.dout.data(), dfinal, in.q.data(), in.k.data(),
                             in.v.data(), in.g.data(), in.beta.data(), s.B, s.T, s.H, s.K, s.V,
                             s.scale(), c.chunk, false);
    const std::tuple<const char*, std::vector<float>*, std::vector<float>*> pairs[] = {
        {"dq", &got.dq, &ref.dq},
        {"dk", &got.dk, &ref.dk},
        {"dv", &got.dv, &ref.dv},
        {"dg", &got.dg, &ref.dg},
        {"dbeta", &got.dbeta, &ref.dbeta}};
    for (const auto& [what, a, r] : pairs) {
      auto e = compare(*a, *r);
      worst_bwd = std::isnan(e.rel_rms) ? e.rel_rms : std::max(worst_bwd, e.rel_rms);
      EXPECT_LT(e.rel_rms, kBwdTol) << what << ": rel rms " << e.rel_rms << ", worst " << e.worst
                                    << " got " << (*a)[e.worst] << " ref " << (*r)[e.worst];
    }
  }
  std::printf("  %-44s worst rel rms: fwd %.1e  bwd %.1e\n", c.name, worst_fwd, worst_bwd);
}

TEST(GatedDeltaChunked, MatchesReference) {
  const ChunkCase cases[] = {
      {"weak decay, T=63, chunk 16", {2, 63, 3, 10, 14}, -0.1f, -0.001f, 0.05f, 0.95f, 16},
      {"strong decay, T=63, chunk 16", {2, 63, 3, 10, 14}, -20.f, -5.f, 0.05f, 0.95f, 16},
      {"mixed decay, T=63, chunk 16", {2, 63, 3, 10, 14}, -20.f, 0.f, 0.05f, 0.95f, 16},
      {"beta near 0, T=63, chunk 16", {2, 63, 2, 8, 12}, -1.f, -0.01f, 0.f, 0.02f, 16},
      {"beta near 1, T=63, chunk 16", {2, 63, 2, 8, 12}, -1.f, -0.01f, 0.98f, 1.f, 16},
      {"beta near 1, no decay, T=63", {2, 63, 2, 8, 12}, -1e-4f, 0.f, 0.99f, 1.f, 16},
      {"beta in (1, 2) (neg. eigenvalues)", {2, 40, 2, 8, 12}, -1.f, -0.01f, 1.f, 1.9f, 16},
      {"T < chunk", {2, 11, 2, 9, 13}, -1.f, -0.01f, 0.05f, 0.95f, 16},
      {"T=130, chunk 64", {1, 130, 2, 12, 20}, -0.3f, -0.001f, 0.05f, 0.95f, 64},
      {"strong decay, T=130, chunk 64", {1, 130, 2, 12, 20}, -20.f, -5.f, 0.05f, 0.95f, 64},
      {"chunk 1", {1, 9, 2, 4, 5}, -1.f, -0.01f, 0.05f, 0.95f, 1},
  };
  for (const auto& c : cases) check_chunked(c);
}

TEST(GatedDeltaChunked, BackwardAccumulatesOverwritesAndSkipsNull) {
  const Shape s{2, 21, 2, 6, 9};
  Inputs in(s, -2.f, -0.01f, 0.1f, 0.9f, 7);
  CpuBackend cpu;
  auto run = [&](Grads& g, bool all, bool accumulate) {
    cpu.gated_delta_backward(g.dq.data(), all ? g.dk.data() : nullptr, g.dv.data(),
                             all ? g.dg.data() : nullptr, all ? g.dbeta.data() : nullptr,
                             in.dout.data(), in.dfinal.data(), in.q.data(), in.k.data(),
                             in.v.data(), in.g.data(), in.beta.data(), s.B, s.T, s.H, s.K, s.V,
                             s.scale(), 8, accumulate);
  };
  Grads once(s), twice(s), nan(s), partial(s);
  run(once, true, true);
  run(twice, true, true);
  run(twice, true, true);
  for (auto* v : {&nan.dq, &nan.dk, &nan.dv, &nan.dg, &nan.dbeta}) v->assign(v->size(), NAN);
  run(nan, true, false);  // overwrite: old contents (NaN) never read
  const std::tuple<std::vector<float>*, std::vector<float>*, std::vector<float>*> sets[] = {
      {&once.dq, &twice.dq, &nan.dq},
      {&once.dk, &twice.dk, &nan.dk},
      {&once.dv, &twice.dv, &nan.dv},
      {&once.dg, &twice.dg, &nan.dg},
      {&once.dbeta, &twice.dbeta, &nan.dbeta}};
  for (const auto& [a, b, c] : sets) {
    EXPECT_EQ(*a, *c);
    for (size_t i = 0; i < a->size(); ++i) ASSERT_FLOAT_EQ((*b)[i], 2 * (*a)[i]) << i;
  }
  run(partial, false, true);
  EXPECT_EQ(partial.dq, once.dq);
  EXPECT_EQ(partial.dv, once.dv);
  EXPECT_EQ(dot(partial.dk, partial.dk), 0.0);
  // final_state = nullptr still computes o.
  std::vector<float> o1(s.vo()), o2(s.vo()), fs(s.state());
  cpu.gated_delta_forward(o1.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(), in.g.data(),
                          in.beta.data(), s.B, s.T, s.H, s.K, s.V, s.scale(), 8);
  cpu.gated_delta_forward(o2.data(), nullptr, in.q.data(), in.k.data(), in.v.data(), in.g.data(),
                          in.beta.data(), s.B, s.T, s.H, s.K, s.V, s.scale(), 8);
  EXPECT_EQ(o1, o2);
}

TEST(GatedDeltaChunked, ResultsDoNotDependOnThreadCount) {
  const Shape s{3, 40, 3, 8, 12};
  Inputs in(s, -3.f, -0.01f, 0.1f, 0.9f, 5);
  CpuBackend cpu;
  auto run = [&](int threads, std::vector<float>& o, Grads& g) {
    testing::OmpThreads scoped(threads);
    cpu.gated_delta_forward(o.data(), nullptr, in.q.data(), in.k.data(), in.v.data(), in.g.data(),
                            in.beta.data(), s.B, s.T, s.H, s.K, s.V, s.scale(), 16);
    cpu.gated_delta_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.dg.data(), g.dbeta.data(),
                             in.dout.data(), in.dfinal.data(), in.q.data(), in.k.data(),
                             in.v.data(), in.g.data(), in.beta.data(), s.B, s.T, s.H, s.K, s.V,
                             s.scale(), 16, false);
  };
  std::vector<float> o1(s.vo()), o3(s.vo());
  Grads g1(s), g3(s);
  run(1, o1, g1);
  run(3, o3, g3);
  EXPECT_EQ(o1, o3);
  EXPECT_EQ(g1.dq, g3.dq);
  EXPECT_EQ(g1.dk, g3.dk);
  EXPECT_EQ(g1.dv, g3.dv);
  EXPECT_EQ(g1.dg, g3.dg);
  EXPECT_EQ(g1.dbeta, g3.dbeta);
}

}  // namespace
}  // namespace statex
