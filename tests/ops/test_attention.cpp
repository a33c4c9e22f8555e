// Causal softmax attention CPU ops: the naive O(T^2) reference against finite differences, the
// blocked online-softmax fast path against finite differences and against the reference
// (forward, lse and every gradient; T not a multiple of the block, heads not a power of two,
// large scores), the accumulate-into-gradients contract and thread-count independence.

#include <cmath>
#include <limits>
#include <vector>

#include "sim/ops/cpu/attention_reference.h"
#include "sim/ops/cpu/cpu_backend.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using testing::compare;
using testing::dot;
using testing::fd_check;
using testing::random_vector;

struct AttnShape {
  int B, T, H, Dh;
  size_t n() const { return size_t(B) * T * H * Dh; }
  size_t rows() const { return size_t(B) * H * T; }
  float scale() const { return 1.f / std::sqrt(float(Dh)); }
};

struct AttnInputs {
  std::vector<float> q, k, v, dout;
  AttnInputs(const AttnShape& s, unsigned seed, float qk_range = 1.f)
      : q(random_vector(s.n(), seed + 1, -qk_range, qk_range)),
        k(random_vector(s.n(), seed + 2, -qk_range, qk_range)),
        v(random_vector(s.n(), seed + 3)),
        dout(random_vector(s.n(), seed + 4)) {}
};

struct AttnGrads {
  std::vector<float> dq, dk, dv;
  explicit AttnGrads(const AttnShape& s) : dq(s.n()), dk(s.n()), dv(s.n()) {}
};

// Fast path: forward then backward (overwriting the gradients).
struct FastRun {
  std::vector<float> o, lse;
  AttnGrads g;
  FastRun(CpuBackend& be, const AttnShape& s, const AttnInputs& in)
      : o(s.n()), lse(s.rows()), g(s) {
    be.attention_forward(o.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H,
                         s.Dh, s.scale());
    be.attention_backward(g.dq.data(), g.dk.data(), g.dv.data(), in.dout.data(), in.q.data(),
                          in.k.data(), in.v.data(), o.data(), lse.data(), s.B, s.T, s.H, s.Dh,
                          s.scale(), false);
  }
};

// ---------------- finite differences (T=63, D=60 as 3 heads of 20) ----------------

TEST(AttentionReference, GradientsMatchFiniteDifferences) {
  const AttnShape s{1, 63, 3, 20};
  AttnInputs in(s, 7);
  std::vector<float> o(s.n());
  auto loss = [&] {
    reference::attention_forward(o.data(), nullptr, in.q.data(), in.k.data(), in.v.data(), s.B, s.T,
                                 s.H, s.Dh, s.scale());
    return dot(o, in.dout);
  };
  AttnGrads g(s);
  reference::attention_backward(g.dq.data(), g.dk.data(), g.dv.data(), in.dout.data(), in.q.data(),
                                in.k.data(), in.v.data(), s.B, s.T, s.H, s.Dh, s.scale());
  // h = 1e-2: the loss is smooth (softmax of O(1) scores); O(h^2) truncation ~1e-5.
  EXPECT_FD_OK(fd_check(loss, in.q, g.dq, 1e-2), "dq");
  EXPECT_FD_OK(fd_check(loss, in.k, g.dk, 1e-2), "dk");
  EXPECT_FD_OK(fd_check(loss, in.v, g.dv, 1e-2), "dv");
}

TEST(AttentionFast, GradientsMatchFiniteDifferences) {
  CpuBackend be;
  const AttnShape s{2, 63, 3, 20};
  AttnInputs in(s, 17);
  FastRun run(be, s, in);
  std::vector<float> o(s.n()), lse(s.rows());
  auto loss = [&] {
    be.attention_forward(o.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H,
                         s.Dh, s.scale());
    return dot(o, in.dout);
  };
  EXPECT_FD_OK(fd_check(loss, in.q, run.g.dq, 1e-2), "dq");
  EXPECT_FD_OK(fd_check(loss, in.k, run.g.dk, 1e-2), "dk");
  EXPECT_FD_OK(fd_check(loss, in.v, run.g.dv, 1e-2), "dv");
}

// ---------------- blocked fast path vs naive reference ----------------

struct LadderCase {
  const char* name;
  AttnShape shape;
  float qk_range;  // larger: sharper softmax, scores up to ~qk_range^2 sqrt(Dh)
};

class AttentionLadder : public ::testing::TestWithParam<LadderCase> {};

TEST_P(AttentionLadder, FastMatchesReference) {
  CpuBackend be;
  const LadderCase& c = GetParam();
  const AttnShape& s = c.shape;
  AttnInputs in(s, 31, c.qk_range);
  FastRun fast(be, s, in);
  std::vector<float> o(s.n()), lse(s.rows());
  AttnGrads ref(s);
  reference::attention_forward(o.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s.B,
                               s.T, s.H, s.Dh, s.scale());
  reference::attention_backward(ref.dq.data(), ref.dk.data(), ref.dv.data(), in.dout.data(),
                                in.q.data(), in.k.data(), in.v.data(), s.B, s.T, s.H, s.Dh,
                                s.scale());
  // fp32 against a double reference: a row's result is a sum of at most T terms of O(1), so
  // the error is a few hundred ulps at most; 1e-5 relative RMS leaves an order of magnitude.
  struct Item {
    const char* what;
    const std::vector<float>& got;
    const std::vector<float>& want;
  };
  for (const Item& it :
       {Item{"o", fast.o, o}, Item{"lse", fast.lse, lse}, Item{"dq", fast.g.dq, ref.dq},
        Item{"dk", fast.g.dk, ref.dk}, Item{"dv", fast.g.dv, ref.dv}}) {
    auto d = compare(it.got, it.want);
    // (T = 1: dq and dk are exactly zero in the reference; ours are rounding-level.)
    EXPECT_TRUE(d.rel_rms < 1e-5 || d.max_abs < 1e-6)
        << it.what << ": rel RMS " << d.rel_rms << ", worst element " << d.worst << " got "
        << it.got[d.worst] << " want " << it.want[d.worst];
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionLadder,
                         ::testing::Values(LadderCase{"T63_H3_Dh20", {2, 63, 3, 20}, 1.f},
                                           LadderCase{"T100_H5_Dh12", {1, 100, 5, 12}, 1.f},
                                           LadderCase{"T129_H2_Dh7", {3, 129, 2, 7}, 1.f},
                                           LadderCase{"T64_exact_blocks", {2, 64, 3, 16}, 1.f},
                                           LadderCase{"T1", {2, 1, 3, 4}, 1.f},
                                           LadderCase{"sharp_scores", {2, 97, 3, 20}, 4.f}),
                         [](const ::testing::TestParamInfo<LadderCase>& i) {
                           return std::string(i.param.name);
                         });

// ---------------- contracts ----------------

TEST(AttentionFast, AccumulateAddsAndOverwriteIgnoresOldContents) {
  CpuBackend be;
  const AttnShape s{2, 45, 3, 8};
  AttnInputs in(s, 5);
  FastRun run(be, s, in);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  AttnGrads over(s);
  for (auto* g : {&over.dq, &over.dk, &over.dv}) g->assign(s.n(), nan);
  be.attention_backward(over.dq.data(), over.dk.data(), over.dv.data(), in.dout.data(), in.q.data(),
                        in.k.data(), in.v.data(), run.o.data(), run.lse.data(), s.B, s.T, s.H, s.Dh,
                        s.scale(), false);
  EXPECT_EQ(over.dq, run.g.dq);
  EXPECT_EQ(over.dv, run.g.dv);
  AttnGrads acc(s);
  for (auto* g : {&acc.dq, &acc.dk, &acc.dv}) g->assign(s.n(), 1.f);
  be.attention_backward(acc.dq.data(), acc.dk.data(), acc.dv.data(), in.dout.data(), in.q.data(),
                        in.k.data(), in.v.data(), run.o.data(), run.lse.data(), s.B, s.T, s.H, s.Dh,
                        s.scale(), true);
  for (size_t i = 0; i < s.n(); ++i) {
    ASSERT_FLOAT_EQ(acc.dk[i], run.g.dk[i] + 1.f) << i;
    ASSERT_FLOAT_EQ(acc.dq[i], run.g.dq[i] + 1.f) << i;
  }
  // nullptr gradients are skipped.
  be.attention_backward(nullptr, nullptr, acc.dv.data(), in.dout.data(), in.q.data(), in.k.data(),
                        in.v.data(), run.o.data(), run.lse.data(), s.B, s.T, s.H, s.Dh, s.scale(),
                        false);
  EXPECT_EQ(acc.dv, run.g.dv);
}

TEST(AttentionFast, ResultsDoNotDependOnThreadCount) {
  CpuBackend be;
  const AttnShape s{3, 70, 3, 12};
  AttnInputs in(s, 9);
  testing::OmpThreads threads(1);
  FastRun one(be, s, in);
  threads.set(2);
  FastRun two(be, s, in);
  EXPECT_EQ(one.o, two.o);
  EXPECT_EQ(one.lse, two.lse);
  EXPECT_EQ(one.g.dq, two.g.dq);
  EXPECT_EQ(one.g.dk, two.g.dk);
  EXPECT_EQ(one.g.dv, two.g.dv);
}

TEST(AttentionFast, FirstPositionCopiesItsValue) {
  // Causality: row t = 0 attends only to itself, so o_0 = v_0 and lse_0 = scale q_0 · k_0.
  CpuBackend be;
  const AttnShape s{1, 40, 3, 6};
  AttnInputs in(s, 3);
  FastRun run(be, s, in);
  for (int h = 0; h < s.H; ++h) {
    double qk = 0;
    for (int d = 0; d < s.Dh; ++d) {
      EXPECT_NEAR(run.o[h * s.Dh + d], in.v[h * s.Dh + d], 1e-6);
      qk += double(in.q[h * s.Dh + d]) * in.k[h * s.Dh + d];
    }
    EXPECT_NEAR(run.lse[size_t(h) * s.T], s.scale() * qk, 1e-5);
  }
}

}  // namespace
}  // namespace statex
