// CPU tests of the linear op family: linear (and the OpenBLAS / Eigen GEMM paths under it)
// (sim/ops/cpu/linear.cpp).
//
// Tolerance policy (see tests/support/fd_check.h): gradients by central finite differences on
// odd shapes (N=63, C=60, OC=37, V=53); forwards against direct double-precision formulas with
// tolerances of a few fp32 ulps times the size of the reduction. Accumulation semantics: every
// backward is run once into zeroed gradients (checked by FD) and once into random pre-filled
// gradients, which must end up holding prefill + gradient.
#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <functional>
#include <limits>
#include <vector>

#include "sim/core/backend.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

TEST(CpuLinear, ForwardMatchesDoubleWithAndWithoutBias) {
  auto be = cpu();
  Vec x = random_vector(size_t(kN) * kC, 40), W = random_vector(size_t(kOC) * kC, 41);
  Vec b = random_vector(kOC, 42), out(size_t(kN) * kOC), out_nb(out.size());
  be->linear_forward(out.data(), x.data(), W.data(), b.data(), kN, kC, kOC);
  be->linear_forward(out_nb.data(), x.data(), W.data(), nullptr, kN, kC, kOC);
  for (int i = 0; i < kN; ++i)
    for (int o = 0; o < kOC; ++o) {
      double s = 0;
      for (int c = 0; c < kC; ++c) s += double(x[i * kC + c]) * W[o * kC + c];
      ASSERT_NEAR(out_nb[i * kOC + o], s, 1e-5) << i << "," << o;
      ASSERT_NEAR(out[i * kOC + o], s + b[o], 1e-5) << i << "," << o;
    }
}

TEST(CpuLinear, GradientsByFiniteDifferences) {
  auto be = cpu();
  Vec x = random_vector(size_t(kN) * kC, 43), W = random_vector(size_t(kOC) * kC, 44);
  Vec b = random_vector(kOC, 45), w = random_vector(size_t(kN) * kOC, 46), out(w.size());
  auto loss = [&] {
    be->linear_forward(out.data(), x.data(), W.data(), b.data(), kN, kC, kOC);
    return dot(out, w);
  };
  Vec dx = zeros(x.size()), dW = zeros(W.size()), db = zeros(kOC);
  be->linear_backward(dx.data(), dW.data(), db.data(), w.data(), x.data(), W.data(), kN, kC, kOC,
                      true);
  // The loss is linear in each input, so a large step has no truncation error.
  EXPECT_FD_OK(fd_check(loss, x, dx, 1e-1, 1e-3, 1e-3, 64), "linear dinp");
  EXPECT_FD_OK(fd_check(loss, W, dW, 1e-1, 1e-3, 1e-3, 64), "linear dweight");
  EXPECT_FD_OK(fd_check(loss, b, db, 1e-1, 1e-3, 1e-3, 64), "linear dbias");
  auto bwd_only = [&](float* gx, float* gW, float* gb) {
    be->linear_backward(gx, gW, gb, w.data(), x.data(), W.data(), kN, kC, kOC, true);
  };
  expect_accumulates([&](float* g) { bwd_only(g, nullptr, nullptr); }, dx, 47, "linear dinp");
  expect_accumulates([&](float* g) { bwd_only(nullptr, g, nullptr); }, dW, 48, "linear dweight");
  expect_accumulates([&](float* g) { bwd_only(nullptr, nullptr, g); }, db, 49, "linear dbias");
}

// Bigger shapes that take the threaded paths: dweight with the depth split into chunks
// (few rows of OC) and without (many), and deep products. Checked against double and for
// identical bits with 1 and 3 threads (block boundaries depend only on the shapes).
TEST(CpuLinear, ThreadedPathsMatchDoubleAndAreThreadCountIndependent) {
  auto be = cpu();
  struct Shape { int N, C, OC; };
  // The last two are deep (N >= 2 * 4096): depth chunks over all of OC (ragged last chunk, OC
  // split into 3 blocks of a multiple of 16 rows, the last ragged).
  // {600, 20, 2500} is a wide output (forward in [512 rows, 1024 columns] tiles, both ragged).
  for (Shape s : {Shape{1500, 60, 37}, Shape{700, 33, 530}, Shape{9000, 17, 300},
                  Shape{8192, 9, 40}, Shape{600, 20, 2500}}) {
    const int N = s.N, C = s.C, OC = s.OC;
    Vec x = random_vector(size_t(N) * C, 50), W = random_vector(size_t(OC) * C, 51);
    Vec b = random_vector(OC, 52), dy = random_vector(size_t(N) * OC, 53);
    Vec out[2], dx[2], dW[2], db[2];
    testing::OmpThreads threads(1);
    for (int rep = 0; rep < 2; ++rep) {
      threads.set(rep == 0 ? 1 : 3);
      out[rep].resize(dy.size());
      dx[rep] = zeros(x.size());
      dW[rep] = zeros(W.size());
      db[rep] = zeros(OC);
      be->linear_forward(out[rep].data(), x.data(), W.data(), b.data(), N, C, OC);
      be->linear_backward(dx[rep].data(), dW[rep].data(), db[rep].data(), dy.data(), x.data(),
                          W.data(), N, C, OC, true);
    }
    EXPECT_EQ(out[0], out[1]) << "N=" << N << " OC=" << OC;
    EXPECT_EQ(dx[0], dx[1]) << "N=" << N << " OC=" << OC;
    EXPECT_EQ(dW[0], dW[1]) << "N=" << N << " OC=" << OC;
    EXPECT_EQ(db[0], db[1]) << "N=" << N << " OC=" << OC;
    // Double references (sampled rows/columns for the forward and dinp; all of dW and db).
    // fp32 sums of N terms of size ~1: tolerance ~ 1e-6 * sqrt(N) * few.
    const double tol_n = 2e-6 * std::sqrt(double(N)) * 4, tol_c = 2e-6 * std::sqrt(double(OC)) * 4;
    for (int o = 0; o < OC; ++o) {
      double sb = 0;
      for (int i = 0; i < N; ++i) sb += dy[size_t(i) * OC + o];
      ASSERT_NEAR(db[0][o], sb, tol_n) << "dbias " << o;
      for (int c = 0; c < C; ++c) {
        double sw = 0;
        for (int i = 0; i < N; ++i) sw += double(dy[size_t(i) * OC + o]) * x[size_t(i) * C + c];
        ASSERT_NEAR(dW[0][size_t(o) * C + c], sw, tol_n) << "dweight " << o << "," << c;
      }
    }
    for (int i = 0; i < N; i += 7)
      for (int c = 0; c < C; ++c) {
        double sx = 0;
        for (int o = 0; o < OC; ++o) sx += double(dy[size_t(i) * OC + o]) * W[size_t(o) * C + c];
        ASSERT_NEAR(dx[0][size_t(i) * C + c], sx, tol_c) << "dinp " << i << "," << c;
      }
    for (int i = 0; i < N; i += 7)
      for (int o = 0; o < OC; ++o) {
        double sy = b[o];
        for (int c = 0; c < C; ++c) sy += double(x[size_t(i) * C + c]) * W[size_t(o) * C + c];
        ASSERT_NEAR(out[0][size_t(i) * OC + o], sy, 1e-5) << "out " << i << "," << o;
      }
  }
}

// Throughput probe, not part of CI: run with
//   ./test_ops --gtest_also_run_disabled_tests --gtest_filter='*LinearThroughput*'
// Prints wall-clock GFLOP/s and, since shared machines are often loaded, GFLOP per CPU-second
// (process CPU time over all threads: equals the per-core rate when OMP_NUM_THREADS=1).
TEST(CpuLinear, DISABLED_LinearThroughput) {
  auto be = cpu();
  const int N = 4096;
  std::printf("threads=%d  fwd = 2*N*C*OC flops, bwd = dinp + dweight GEMMs (+ dbias) = 4*N*C*OC\n",
              omp_get_max_threads());
  struct Timing { double wall, cpu; };
  auto time_of = [](const std::function<void()>& f) {
    f();  // warm-up
    int reps = 0;
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();
    double el = 0;
    do {
      f();
      ++reps;
      el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (el < 0.5);
    return Timing{el / reps, double(std::clock() - c0) / CLOCKS_PER_SEC / reps};
  };
  for (int C : {64, 128, 256})
    for (int OC : {64, 256, 1024, 4096, 8192}) {
      Vec x = random_vector(size_t(N) * C, 1), W = random_vector(size_t(OC) * C, 2);
      Vec b = random_vector(OC, 3), out(size_t(N) * OC), dx(x.size()), dW(W.size()), db(OC);
      Timing tf = time_of([&] {
        be->linear_forward(out.data(), x.data(), W.data(), b.data(), N, C, OC);
      });
      Timing tb = time_of([&] {
        be->linear_backward(dx.data(), dW.data(), db.data(), out.data(), x.data(), W.data(), N, C,
                            OC, true);
      });
      // Baseline: the same forward product through Eigen's own OpenMP-parallel GEMM.
      Timing te = time_of([&] {
        using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        Eigen::Map<M>(out.data(), N, OC).noalias() =
            Eigen::Map<const M>(x.data(), N, C) * Eigen::Map<const M>(W.data(), OC, C).transpose();
      });
      const double flop = 2.0 * N * C * OC;
      std::printf("N=%d C=%3d OC=%4d  fwd %6.1f GFLOP/s wall %6.1f /cpu-s (%7.2f ms)   "
                  "bwd %6.1f GFLOP/s wall %6.1f /cpu-s (%7.2f ms)\n",
                  N, C, OC, flop / tf.wall * 1e-9, flop / tf.cpu * 1e-9, tf.wall * 1e3,
                  2 * flop / tb.wall * 1e-9, 2 * flop / tb.cpu * 1e-9, tb.wall * 1e3);
      std::printf("%24s eigen-internal-omp fwd %6.1f GFLOP/s wall (%7.2f ms)\n", "",
                  flop / te.wall * 1e-9, te.wall * 1e3);
    }
}

}  // namespace
}  // namespace statex
