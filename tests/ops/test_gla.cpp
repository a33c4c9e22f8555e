// CPU tests of the gla op family: the GLA scan: the per-timestep reference against finite
// differences, the chunked fast path against the reference (forward and gradients, weak and strong
// decay, partial chunks), the accumulate contract, thread-count independence (sim/ops/cpu/gla.cpp).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/gla_reference.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

struct GlaShape {
  int B, T, H, K, V;
  size_t qk() const { return size_t(B) * T * H * K; }
  size_t vo() const { return size_t(B) * T * H * V; }
  size_t state() const { return size_t(B) * H * K * V; }
  float scale() const { return 1.f / std::sqrt(float(K)); }
};

// Inputs plus a random upstream gradient on o and on the final state.
struct GlaInputs {
  std::vector<float> q, k, v, gk, dout, dfinal;
  GlaInputs(const GlaShape& s, float gk_lo, float gk_hi, unsigned seed)
      : q(random_vector(s.qk(), seed + 1)),
        k(random_vector(s.qk(), seed + 2)),
        v(random_vector(s.vo(), seed + 3)),
        gk(random_vector(s.qk(), seed + 4, gk_lo, gk_hi)),
        dout(random_vector(s.vo(), seed + 5)),
        dfinal(random_vector(s.state(), seed + 6)) {}
};

struct GlaGrads {
  std::vector<float> dq, dk, dv, dgk;
  explicit GlaGrads(const GlaShape& s) : dq(s.qk()), dk(s.qk()), dv(s.vo()), dgk(s.qk()) {}
};

// ---------------- reference vs finite differences ----------------

TEST(GlaReference, GradientsMatchFiniteDifferences) {
  const GlaShape s{2, 13, 2, 5, 7};
  GlaInputs in(s, -1.f, -0.02f, 11);
  std::vector<float> o(s.vo()), fs(s.state());
  // L = <o, dout> + <final_state, dfinal>: both upstream gradients are exercised.
  auto loss = [&] {
    reference::gla_forward(o.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(),
                           in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
    return dot(o, in.dout) + dot(fs, in.dfinal);
  };
  GlaGrads g(s);
  reference::gla_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.dgk.data(), in.dout.data(),
                          in.dfinal.data(), in.q.data(), in.k.data(), in.v.data(), in.gk.data(),
                          s.B, s.T, s.H, s.K, s.V, s.scale());
  // h = 1e-2: the loss is a low-degree polynomial in q, k, v (O(h^2) error ~1e-5) and smooth in gk.
  const double h = 1e-2;
  EXPECT_FD_OK(fd_check(loss, in.q, g.dq, h), "dq");
  EXPECT_FD_OK(fd_check(loss, in.k, g.dk, h), "dk");
  EXPECT_FD_OK(fd_check(loss, in.v, g.dv, h), "dv");
  EXPECT_FD_OK(fd_check(loss, in.gk, g.dgk, h), "dgk");
}

// ---------------- chunked vs reference ----------------

struct ChunkCase {
  const char* name;
  GlaShape shape;
  float gk_lo, gk_hi;
  int chunk;
};

// Tolerances (relative RMS error against the double-accumulated reference): fp32 matmuls over
// K, V <= 64 and chunk-local cumulative decays give ~1e-7..1e-6; we allow 1e-5 forward and 1e-4
// backward (dgk is a reverse cumulative sum of q dq - k dk and loses a little to cancellation).
constexpr double kFwdTol = 1e-5, kBwdTol = 1e-4;

void check_chunked_against_reference(const ChunkCase& c) {
  SCOPED_TRACE(c.name);
  const GlaShape& s = c.shape;
  GlaInputs in(s, c.gk_lo, c.gk_hi, 100 + c.chunk + s.T);
  CpuBackend cpu;
  std::vector<float> o_ref(s.vo()), fs_ref(s.state()), o(s.vo()), fs(s.state());
  reference::gla_forward(o_ref.data(), fs_ref.data(), in.q.data(), in.k.data(), in.v.data(),
                         in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
  cpu.gla_forward(o.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B,
                  s.T, s.H, s.K, s.V, s.scale(), c.chunk);
  double worst_fwd = 0, worst_bwd = 0;  // printed to show the margin (a NaN sticks)
  auto d = compare(o, o_ref);
  if (std::isnan(d.rel_rms) || d.rel_rms > worst_fwd) worst_fwd = d.rel_rms;
  EXPECT_LT(d.rel_rms, kFwdTol) << "o: worst " << d.worst << " got " << o[d.worst] << " ref "
                                << o_ref[d.worst];
  d = compare(fs, fs_ref);
  if (std::isnan(d.rel_rms) || d.rel_rms > worst_fwd) worst_fwd = d.rel_rms;
  EXPECT_LT(d.rel_rms, kFwdTol) << "final_state: worst " << d.worst << " got " << fs[d.worst]
                                << " ref " << fs_ref[d.worst];
  for (bool with_dfinal : {true, false}) {
    SCOPED_TRACE(with_dfinal ? "with dfinal_state" : "dfinal_state = nullptr");
    const float* dfinal = with_dfinal ? in.dfinal.data() : nullptr;
    GlaGrads ref(s), got(s);
    reference::gla_backward(ref.dq.data(), ref.dk.data(), ref.dv.data(), ref.dgk.data(),
                            in.dout.data(), dfinal, in.q.data(), in.k.data(), in.v.data(),
                            in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
    cpu.gla_backward(got.dq.data(), got.dk.data(), got.dv.data(), got.dgk.data(), in.dout.data(),
                     dfinal, in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B, s.T, s.H,
                     s.K, s.V, s.scale(), c.chunk, true);
    const std::pair<const char*, std::pair<std::vector<float>*, std::vector<float>*>> pairs[] = {
        {"dq", {&got.dq, &ref.dq}},
        {"dk", {&got.dk, &ref.dk}},
        {"dv", {&got.dv, &ref.dv}},
        {"dgk", {&got.dgk, &ref.dgk}}};
    for (const auto& [what, p] : pairs) {
      auto e = compare(*p.first, *p.second);
      if (std::isnan(e.rel_rms) || e.rel_rms > worst_bwd) worst_bwd = e.rel_rms;
      EXPECT_LT(e.rel_rms, kBwdTol) << what << ": rel rms " << e.rel_rms << ", worst " << e.worst
                                    << " got " << (*p.first)[e.worst] << " ref "
                                    << (*p.second)[e.worst];
    }
  }
  std::printf("  %-40s worst rel rms: fwd %.1e  bwd %.1e\n", c.name, worst_fwd, worst_bwd);
}

TEST(GlaChunked, MatchesReference) {
  const ChunkCase cases[] = {
      {"weak decay, T=63, chunk 16", {2, 63, 3, 10, 14}, -0.1f, -0.001f, 16},
      {"strong decay, T=63, chunk 16", {2, 63, 3, 10, 14}, -20.f, -5.f, 16},
      {"mixed decay, T=63, chunk 16", {2, 63, 3, 10, 14}, -20.f, 0.f, 16},
      {"weak decay, T < chunk", {2, 11, 2, 9, 13}, -0.1f, -0.001f, 16},
      {"strong decay, T < chunk", {2, 11, 2, 9, 13}, -20.f, -5.f, 16},
      {"weak decay, T=130, chunk 64", {1, 130, 2, 12, 20}, -0.1f, -0.001f, 64},
      {"strong decay, T=130, chunk 64", {1, 130, 2, 12, 20}, -20.f, -5.f, 64},
      {"logsigmoid/16 decay, T=64, chunk 64", {2, 64, 2, 16, 32}, -0.3f, -0.01f, 64},
      // The chunk span sum(-gk) decides the form of the intra-chunk attention (gla.cpp): one
      // factored matmul up to span 40, sub-chunks with pairwise decays above. These two sit
      // on either side of that limit (span 38.4..39.7 and 41.0..42.2 for every head and dim).
      {"span just under the factored limit", {2, 64, 2, 8, 10}, -0.62f, -0.6f, 64},
      {"span just over the factored limit", {2, 64, 2, 8, 10}, -0.66f, -0.64f, 64},
      {"chunk 1", {1, 9, 2, 4, 5}, -1.f, -0.01f, 1},
  };
  for (const auto& c : cases) check_chunked_against_reference(c);
}

TEST(GlaChunked, BackwardAccumulatesAndSkipsNullGradients) {
  const GlaShape s{2, 21, 2, 6, 9};
  GlaInputs in(s, -2.f, -0.01f, 7);
  CpuBackend cpu;
  auto run = [&](GlaGrads& g, bool all) {
    cpu.gla_backward(g.dq.data(), all ? g.dk.data() : nullptr, g.dv.data(),
                     all ? g.dgk.data() : nullptr, in.dout.data(), in.dfinal.data(), in.q.data(),
                     in.k.data(), in.v.data(), in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale(), 8,
                     true);
  };
  GlaGrads once(s), twice(s), partial(s);
  run(once, true);
  run(twice, true);
  run(twice, true);
  for (size_t i = 0; i < s.qk(); ++i) {
    ASSERT_FLOAT_EQ(twice.dq[i], 2 * once.dq[i]) << i;
    ASSERT_FLOAT_EQ(twice.dk[i], 2 * once.dk[i]) << i;
    ASSERT_FLOAT_EQ(twice.dgk[i], 2 * once.dgk[i]) << i;
  }
  for (size_t i = 0; i < s.vo(); ++i) ASSERT_FLOAT_EQ(twice.dv[i], 2 * once.dv[i]) << i;
  // nullptr gradients are skipped; the others are unaffected.
  run(partial, false);
  EXPECT_EQ(partial.dq, once.dq);
  EXPECT_EQ(partial.dv, once.dv);
  EXPECT_EQ(dot(partial.dk, partial.dk), 0.0);
  // final_state = nullptr still computes o.
  std::vector<float> o1(s.vo()), o2(s.vo()), fs(s.state());
  cpu.gla_forward(o1.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B,
                  s.T, s.H, s.K, s.V, s.scale(), 8);
  cpu.gla_forward(o2.data(), nullptr, in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B,
                  s.T, s.H, s.K, s.V, s.scale(), 8);
  EXPECT_EQ(o1, o2);
}

TEST(GlaChunked, ResultsDoNotDependOnThreadCount) {
  const GlaShape s{3, 40, 3, 8, 12};
  GlaInputs in(s, -3.f, -0.01f, 5);
  CpuBackend cpu;
  auto run = [&](int threads, std::vector<float>& o, GlaGrads& g) {
    testing::OmpThreads scoped(threads);
    cpu.gla_forward(o.data(), nullptr, in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B,
                    s.T, s.H, s.K, s.V, s.scale(), 16);
    cpu.gla_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.dgk.data(), in.dout.data(),
                     in.dfinal.data(), in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B,
                     s.T, s.H, s.K, s.V, s.scale(), 16, true);
  };
  std::vector<float> o1(s.vo()), o3(s.vo());
  GlaGrads g1(s), g3(s);
  run(1, o1, g1);
  run(3, o3, g3);
  EXPECT_EQ(o1, o3);
  EXPECT_EQ(g1.dq, g3.dq);
  EXPECT_EQ(g1.dk, g3.dk);
  EXPECT_EQ(g1.dv, g3.dv);
  EXPECT_EQ(g1.dgk, g3.dgk);
}

// ---------------- timing (not run by default: --gtest_also_run_disabled_tests) ----------------

double seconds_of(const std::function<void()>& f, int reps) {
  f();  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

TEST(GlaBenchmark, DISABLED_ForwardBackwardTime) {
  const GlaShape shapes[] = {{64, 64, 2, 16, 32}, {64, 256, 2, 64, 128}};
  CpuBackend cpu;
  for (const auto& s : shapes) {
    GlaInputs in(s, -0.3f, -0.01f, 3);
    std::vector<float> o(s.vo()), fs(s.state());
    GlaGrads g(s);
    auto ref = [&] {
      reference::gla_forward(o.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(),
                             in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
      reference::gla_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.dgk.data(),
                              in.dout.data(), nullptr, in.q.data(), in.k.data(), in.v.data(),
                              in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale());
    };
    std::printf("B=%d T=%d H=%d K=%d V=%d (%d threads)\n", s.B, s.T, s.H, s.K, s.V,
                omp_get_max_threads());
    std::printf("  reference fwd+bwd: %8.2f ms\n", 1e3 * seconds_of(ref, 1));
    for (int chunk : {16, 32, 64}) {
      auto fast_fwd = [&] {
        cpu.gla_forward(o.data(), fs.data(), in.q.data(), in.k.data(), in.v.data(),
                        in.gk.data(), s.B, s.T, s.H, s.K, s.V, s.scale(), chunk);
      };
      auto fast_bwd = [&] {
        cpu.gla_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.dgk.data(), in.dout.data(),
                         nullptr, in.q.data(), in.k.data(), in.v.data(), in.gk.data(), s.B, s.T,
                         s.H, s.K, s.V, s.scale(), chunk, true);
      };
      std::printf("  chunked (chunk %2d) fwd: %7.2f ms  bwd: %7.2f ms\n", chunk,
                  1e3 * seconds_of(fast_fwd, 10), 1e3 * seconds_of(fast_bwd, 10));
    }
  }
}

}  // namespace
}  // namespace statex
