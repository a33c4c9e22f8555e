// CPU tests of the ssd op family: the SSD scan: the recurrent reference against finite differences
// and a hand-unrolled case, the chunked fast path against the reference (sim/ops/cpu/ssd.cpp).
//
// Tolerance policy:
//  - finite differences use tests/support/fd_check.h defaults (atol 2e-3, rtol 2e-2, justified
//    there: fp32 central differences with h = 1e-3 and |L| = O(10)).
//  - chunked SSD vs the recurrent reference (which computes in double): relative RMS error
//    < 1e-5 forward and < 1e-4 backward. The chunked path is fp32 with reductions of length
//    <= chunk + N (~100 terms), so its rounding error is a few eps_f32 * sqrt(terms) ~ 1e-6
//    relative; backward goes through more products (and the dt / A_log gradients through
//    differences of such terms), hence 10x more room.
#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/ssd_reference.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

struct SsdShape {
  int B, T, H, P, G, N;
};

struct SsdInputs {
  SsdShape s;
  Vec x, dt, A_log, Bm, Cm;
  size_t nx() const { return size_t(s.B) * s.T * s.H * s.P; }
  size_t nstate() const { return size_t(s.B) * s.H * s.P * s.N; }
};

// dt ~ U[dt_lo, dt_hi], A = exp(A_log) ~ U[a_lo, a_hi] (so dt * A in [-dt_hi a_hi, -dt_lo a_lo]).
SsdInputs make_ssd(SsdShape s, unsigned seed, float dt_lo, float dt_hi, float a_lo, float a_hi) {
  SsdInputs in{s};
  in.x = random_vector(in.nx(), seed + 1);
  in.dt = random_vector(size_t(s.B) * s.T * s.H, seed + 2, dt_lo, dt_hi);
  in.A_log = random_vector(s.H, seed + 3, a_lo, a_hi);
  for (auto& a : in.A_log) a = std::log(a);
  in.Bm = random_vector(size_t(s.B) * s.T * s.G * s.N, seed + 4);
  in.Cm = random_vector(in.Bm.size(), seed + 5);
  return in;
}

struct SsdGrads {
  Vec dx, ddt, dA_log, dBm, dCm;
  explicit SsdGrads(const SsdInputs& in)
      : dx(in.x.size()), ddt(in.dt.size()), dA_log(in.A_log.size()), dBm(in.Bm.size()),
        dCm(in.Cm.size()) {}
};

// chunk <= 0 selects the recurrent reference.
void ssd_fwd(const SsdInputs& in, int chunk, Vec& y, Vec& fin) {
  const auto& s = in.s;
  y.assign(in.nx(), 0.f);
  fin.assign(in.nstate(), 0.f);
  if (chunk <= 0) {
    reference::ssd_forward(y.data(), fin.data(), in.x.data(), in.dt.data(), in.A_log.data(),
                           in.Bm.data(), in.Cm.data(), s.B, s.T, s.H, s.P, s.G, s.N);
  } else {
    CpuBackend be;
    be.ssd_forward(y.data(), fin.data(), in.x.data(), in.dt.data(), in.A_log.data(), in.Bm.data(),
                   in.Cm.data(), s.B, s.T, s.H, s.P, s.G, s.N, chunk);
  }
}

void ssd_bwd(const SsdInputs& in, int chunk, const Vec& dy, const Vec* dfin, SsdGrads& g) {
  const auto& s = in.s;
  const float* df = dfin ? dfin->data() : nullptr;
  if (chunk <= 0) {
    reference::ssd_backward(g.dx.data(), g.ddt.data(), g.dA_log.data(), g.dBm.data(),
                            g.dCm.data(), dy.data(), df, in.x.data(), in.dt.data(),
                            in.A_log.data(), in.Bm.data(), in.Cm.data(), s.B, s.T, s.H, s.P, s.G,
                            s.N);
  } else {
    CpuBackend be;
    be.ssd_backward(g.dx.data(), g.ddt.data(), g.dA_log.data(), g.dBm.data(), g.dCm.data(),
                    dy.data(), df, in.x.data(), in.dt.data(), in.A_log.data(), in.Bm.data(),
                    in.Cm.data(), s.B, s.T, s.H, s.P, s.G, s.N, chunk, true);
  }
}

// Finite differences of L = <y, wy> + <final_state, wf> w.r.t. every input.
void ssd_fd(SsdShape s, int chunk, const char* label) {
  SsdInputs in = make_ssd(s, 100 + s.G, 0.05f, 0.6f, 1.f, 4.f);
  Vec wy = random_vector(in.nx(), 41), wf = random_vector(in.nstate(), 42), y, fin;
  auto loss = [&] {
    ssd_fwd(in, chunk, y, fin);
    return dot(y, wy) + dot(fin, wf);
  };
  SsdGrads g(in);
  ssd_bwd(in, chunk, wy, &wf, g);
  std::string l = label;
  EXPECT_FD_OK(fd_check(loss, in.x, g.dx), l + " dx");
  EXPECT_FD_OK(fd_check(loss, in.dt, g.ddt), l + " ddt");
  EXPECT_FD_OK(fd_check(loss, in.A_log, g.dA_log), l + " dA_log");
  EXPECT_FD_OK(fd_check(loss, in.Bm, g.dBm), l + " dBm");
  EXPECT_FD_OK(fd_check(loss, in.Cm, g.dCm), l + " dCm");
}

TEST(SsdReference, FiniteDifferenceOneGroup) { ssd_fd({2, 13, 3, 5, 1, 7}, 0, "ref G=1"); }
TEST(SsdReference, FiniteDifferenceThreeGroups) { ssd_fd({2, 13, 3, 5, 3, 7}, 0, "ref G=3"); }
TEST(SsdChunked, FiniteDifferenceOneGroup) { ssd_fd({2, 13, 3, 5, 1, 7}, 4, "chunked G=1"); }
TEST(SsdChunked, FiniteDifferenceThreeGroups) { ssd_fd({2, 13, 3, 5, 3, 7}, 4, "chunked G=3"); }

TEST(SsdReference, MatchesHandUnrolledScalarCase) {
  // P = N = 1, one head: h_t = a_t h_{t-1} + dt_t x_t b_t, y_t = h_t c_t.
  SsdInputs in = make_ssd({1, 3, 1, 1, 1, 1}, 7, 0.1f, 0.9f, 1.f, 3.f);
  Vec y, fin;
  ssd_fwd(in, 0, y, fin);
  double A = -std::exp(double(in.A_log[0])), h = 0;
  for (int t = 0; t < 3; ++t) {
    h = std::exp(in.dt[t] * A) * h + double(in.dt[t]) * in.x[t] * in.Bm[t];
    EXPECT_NEAR(y[t], h * in.Cm[t], 1e-6);
  }
  EXPECT_NEAR(fin[0], h, 1e-6);
}

// Chunked vs reference, forward and backward with random upstream gradients on y and the state.
void ssd_compare(SsdShape s, int chunk, float dt_lo, float dt_hi, float a_lo, float a_hi,
                 unsigned seed) {
  SsdInputs in = make_ssd(s, seed, dt_lo, dt_hi, a_lo, a_hi);
  Vec y_ref, f_ref, y, f;
  ssd_fwd(in, 0, y_ref, f_ref);
  ssd_fwd(in, chunk, y, f);
  auto dyv = compare(y, y_ref), dfv = compare(f, f_ref);
  EXPECT_LT(dyv.rel_rms, 1e-5) << "y worst " << dyv.worst << ": " << y[dyv.worst] << " vs "
                               << y_ref[dyv.worst];
  EXPECT_LT(dfv.rel_rms, 1e-5) << "final_state worst " << dfv.worst << ": " << f[dfv.worst]
                               << " vs " << f_ref[dfv.worst];

  Vec dy = random_vector(in.nx(), seed + 50), dfin = random_vector(in.nstate(), seed + 51);
  SsdGrads g_ref(in), g(in);
  ssd_bwd(in, 0, dy, &dfin, g_ref);
  ssd_bwd(in, chunk, dy, &dfin, g);
  std::printf("  chunked vs reference rel_rms: y %.2e final %.2e |", dyv.rel_rms, dfv.rel_rms);
  auto check = [](const Vec& got, const Vec& ref, const char* what) {
    auto d = compare(got, ref);
    std::printf(" %s %.2e", what, d.rel_rms);
    EXPECT_LT(d.rel_rms, 1e-4) << what << " rel_rms " << d.rel_rms << " worst " << d.worst << ": "
                               << got[d.worst] << " vs " << ref[d.worst];
  };
  check(g.dx, g_ref.dx, "dx");
  check(g.ddt, g_ref.ddt, "ddt");
  check(g.dA_log, g_ref.dA_log, "dA_log");
  check(g.dBm, g_ref.dBm, "dBm");
  check(g.dCm, g_ref.dCm, "dCm");
  std::printf("\n");
}

// Mild decay: dt * A in [-0.8, -0.001].
TEST(SsdChunkedVsReference, MildDecayT63Chunk16) {
  ssd_compare({2, 63, 3, 5, 1, 7}, 16, 0.001f, 0.2f, 1.f, 4.f, 1);
}
// Strong decay: dt * A in [-80, -5]; a chunk's segment sums reach -1000s.
TEST(SsdChunkedVsReference, StrongDecayT63Chunk16) {
  ssd_compare({2, 63, 3, 5, 1, 7}, 16, 1.f, 5.f, 5.f, 16.f, 2);
}
// Mixed: per-step decays from ~0 to -80 in the same chunk (large |cs| next to small steps).
TEST(SsdChunkedVsReference, MixedDecayT63Chunk16) {
  ssd_compare({2, 63, 4, 5, 2, 7}, 16, 1e-3f, 5.f, 1.f, 16.f, 3);
}
// Spans around the factored form's limit (a head's -cs_last <= 40 in a chunk,
// sim/ops/cpu/ssd.cpp): per-step decays of 1.5..3.5 make 16-step chunks span ~40 +- 8, so one
// call takes both forms, also side by side within a group. Counted here from the inputs, so the
// test fails if either form goes missing.
TEST(SsdChunkedVsReference, BothFormsInOneCall) {
  const SsdShape s{3, 63, 4, 5, 2, 7};
  const int chunk = 16;
  SsdInputs in = make_ssd(s, 11, 1.5f, 3.5f, 1.f, 1.001f);
  int factored = 0, per_head = 0;
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h)
      for (int t0 = 0; t0 < s.T; t0 += chunk) {
        double span = 0;
        for (int t = t0; t < std::min(s.T, t0 + chunk); ++t)
          span += in.dt[(size_t(b) * s.T + t) * s.H + h] * std::exp(double(in.A_log[h]));
        ++(span <= 40.0 ? factored : per_head);
      }
  EXPECT_GT(factored, 4);
  EXPECT_GT(per_head, 4);
  ssd_compare(s, chunk, 1.5f, 3.5f, 1.f, 1.001f, 11);
}
TEST(SsdChunkedVsReference, TShorterThanChunk) {
  ssd_compare({2, 13, 3, 5, 1, 7}, 32, 0.01f, 0.5f, 1.f, 8.f, 4);
}
TEST(SsdChunkedVsReference, GroupsAndChunkOne) {
  ssd_compare({2, 21, 6, 4, 3, 5}, 1, 0.01f, 0.5f, 1.f, 8.f, 5);
}
TEST(SsdChunkedVsReference, GroupsLongerSequence) {
  ssd_compare({3, 100, 4, 8, 2, 6}, 32, 0.001f, 0.3f, 1.f, 16.f, 6);
}

TEST(SsdChunked, ZeroFinalStateGradIsNullptrAndNullGradsSkipped) {
  SsdInputs in = make_ssd({2, 13, 3, 5, 1, 7}, 8, 0.05f, 0.5f, 1.f, 4.f);
  Vec dy = random_vector(in.nx(), 60), zero_fin(in.nstate(), 0.f);
  SsdGrads a(in), b(in);
  ssd_bwd(in, 4, dy, &zero_fin, a);
  CpuBackend be;
  const auto& s = in.s;
  be.ssd_backward(b.dx.data(), nullptr, nullptr, nullptr, b.dCm.data(), dy.data(), nullptr,
                  in.x.data(), in.dt.data(), in.A_log.data(), in.Bm.data(), in.Cm.data(), s.B, s.T,
                  s.H, s.P, s.G, s.N, 4, true);
  EXPECT_EQ(a.dx, b.dx);
  EXPECT_EQ(a.dCm, b.dCm);
  // final_state = nullptr forward gives the same y.
  Vec y1, f1, y2(in.nx());
  ssd_fwd(in, 4, y1, f1);
  be.ssd_forward(y2.data(), nullptr, in.x.data(), in.dt.data(), in.A_log.data(), in.Bm.data(),
                 in.Cm.data(), s.B, s.T, s.H, s.P, s.G, s.N, 4);
  EXPECT_EQ(y1, y2);
}

TEST(SsdChunked, BackwardAccumulates) {
  SsdInputs in = make_ssd({2, 29, 4, 5, 2, 7}, 9, 0.05f, 0.5f, 1.f, 4.f);
  Vec dy = random_vector(in.nx(), 61), dfin = random_vector(in.nstate(), 62);
  SsdGrads once(in), twice(in);
  ssd_bwd(in, 8, dy, &dfin, once);
  ssd_bwd(in, 8, dy, &dfin, twice);
  ssd_bwd(in, 8, dy, &dfin, twice);
  for (Vec* v : {&once.dx, &once.ddt, &once.dA_log, &once.dBm, &once.dCm})
    for (auto& e : *v) e *= 2;
  EXPECT_LT(compare(twice.dx, once.dx).rel_rms, 1e-6);
  EXPECT_LT(compare(twice.ddt, once.ddt).rel_rms, 1e-6);
  EXPECT_LT(compare(twice.dA_log, once.dA_log).rel_rms, 1e-6);
  EXPECT_LT(compare(twice.dBm, once.dBm).rel_rms, 1e-6);
  EXPECT_LT(compare(twice.dCm, once.dCm).rel_rms, 1e-6);
  // Same for the reference.
  SsdGrads r1(in), r2(in);
  ssd_bwd(in, 0, dy, &dfin, r1);
  ssd_bwd(in, 0, dy, &dfin, r2);
  ssd_bwd(in, 0, dy, &dfin, r2);
  for (auto& e : r1.dA_log) e *= 2;
  EXPECT_LT(compare(r2.dA_log, r1.dA_log).rel_rms, 1e-6);
}

TEST(SsdChunked, BitwiseIdenticalForAnyThreadCount) {
  // Big enough (B*T*H*P*N >= 2^16) that the ops do open a parallel region.
  SsdInputs in = make_ssd({4, 70, 4, 8, 2, 8}, 10, 0.05f, 0.5f, 1.f, 4.f);
  Vec dy = random_vector(in.nx(), 63), dfin = random_vector(in.nstate(), 64);
  SsdGrads g1(in), g3(in);
  Vec y1, f1, y3, f3;
  testing::OmpThreads threads(1);
  ssd_fwd(in, 8, y1, f1);
  ssd_bwd(in, 8, dy, &dfin, g1);
  threads.set(3);
  ssd_fwd(in, 8, y3, f3);
  ssd_bwd(in, 8, dy, &dfin, g3);
  EXPECT_EQ(y1, y3);
  EXPECT_EQ(f1, f3);
  EXPECT_EQ(g1.dx, g3.dx);
  EXPECT_EQ(g1.ddt, g3.ddt);
  EXPECT_EQ(g1.dA_log, g3.dA_log);
  EXPECT_EQ(g1.dBm, g3.dBm);
  EXPECT_EQ(g1.dCm, g3.dCm);
}

// Timing (not run by default: --gtest_also_run_disabled_tests --gtest_filter=*Timing*).
// Reports process CPU time (all threads) as well as wall time: on a shared machine the wall time
// mostly measures the other processes.
struct Timing {
  double wall_ms, cpu_ms;
};
Timing time_fwd_bwd(const SsdInputs& in, int chunk, int reps) {
  Vec y, f, dy = random_vector(in.nx(), 70), dfin = random_vector(in.nstate(), 71);
  SsdGrads g(in);
  ssd_fwd(in, chunk, y, f);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  for (int r = 0; r < reps; ++r) {
    ssd_fwd(in, chunk, y, f);
    ssd_bwd(in, chunk, dy, &dfin, g);
  }
  const double cpu = 1000.0 * double(std::clock() - c0) / CLOCKS_PER_SEC / reps;
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
      reps;
  return {wall, cpu};
}

TEST(SsdTiming, DISABLED_ChunkedVsReference) {
  for (SsdShape s : {SsdShape{64, 64, 8, 16, 1, 16}, SsdShape{64, 256, 16, 16, 1, 16}}) {
    SsdInputs in = make_ssd(s, 11, 0.001f, 0.1f, 1.f, 16.f);
    for (int chunk : {0, 16, 32, 64}) {
      Timing t = time_fwd_bwd(in, chunk, 2);
      std::printf("B=%d T=%d H=%d P=%d N=%d threads=%d %s chunk=%d: fwd+bwd wall %.1f ms, cpu %.1f ms\n",
                  s.B, s.T, s.H, s.P, s.N, omp_get_max_threads(), chunk ? "chunked" : "reference",
                  chunk, t.wall_ms, t.cpu_ms);
    }
  }
}

}  // namespace
}  // namespace statex
