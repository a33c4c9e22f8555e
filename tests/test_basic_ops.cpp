// Tests of the basic CPU ops of the training step: memory/data movement, activations, embedding,
// RMSNorm, linear, softmax cross-entropy and AdamW (sim/ops/cpu/*.cpp).
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
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using testing::compare;
using testing::dot;
using testing::fd_check;
using testing::random_vector;
using Vec = std::vector<float>;

constexpr int kN = 63, kC = 60, kOC = 37, kV = 53;

std::unique_ptr<Backend> cpu() { return make_cpu_backend(); }

Vec zeros(size_t n) { return Vec(n, 0.f); }

double max_abs_diff(const Vec& a, const Vec& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// Runs `backward(grad)` into a random prefill and checks grad == prefill + expected.
// The sum rounds once in fp32, so the tolerance is a few ulps of the operands.
void expect_accumulates(const std::function<void(float*)>& backward, const Vec& expected,
                        unsigned seed, const char* what) {
  Vec prefill = random_vector(expected.size(), seed, -2.f, 2.f);
  Vec grad = prefill;
  backward(grad.data());
  double worst = 0;
  for (size_t i = 0; i < grad.size(); ++i) {
    double want = double(prefill[i]) + double(expected[i]);
    double tol = 1e-6 * (2.0 + std::fabs(expected[i]));
    worst = std::max(worst, std::fabs(grad[i] - want) - tol);
  }
  EXPECT_LE(worst, 0.0) << what << ": backward does not accumulate into the gradient";
}

// ---------------------------------------------------------------- memory / data movement
TEST(CpuMemory, NameAllocZeroAndTransfers) {
  auto be = cpu();
  EXPECT_EQ(be->name(), "cpu");
  for (size_t bytes : {size_t(0), size_t(1), size_t(100), size_t(4096 + 3)}) {
    void* p = be->malloc_bytes(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << bytes << " bytes";
    be->free_bytes(p);
  }
  const size_t n = 1000;
  float* d = static_cast<float*>(be->malloc_bytes(n * sizeof(float)));
  Vec src = random_vector(n, 1), back(n, -7.f);
  be->to_device(d, src.data(), n * sizeof(float));
  be->to_host(back.data(), d, n * sizeof(float));
  EXPECT_EQ(back, src);
  be->zero(d, n * sizeof(float));
  be->to_host(back.data(), d, n * sizeof(float));
  EXPECT_EQ(back, zeros(n));
  be->free_bytes(d);
}

// Big buffers (>= 4 MiB) are 2 MiB-aligned so that they can be backed by transparent huge pages,
// and the whole requested size is usable.
TEST(CpuMemory, BigBuffersAreHugePageAligned) {
  auto be = cpu();
  const size_t huge = size_t(2) << 20;
  for (size_t bytes : {2 * huge, 5 * huge + 12345}) {
    char* p = static_cast<char*>(be->malloc_bytes(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % huge, 0u) << bytes << " bytes";
    be->zero(p, bytes);
    p[bytes - 1] = 1;
    EXPECT_EQ(p[bytes - 1], 1);
    be->free_bytes(p);
  }
}

// Big buffers are zeroed in parallel slices: every byte, including a partial last slice, and
// nothing outside [p, p + bytes).
TEST(CpuMemory, ZeroClearsBigBuffersExactly) {
  auto be = cpu();
  const size_t bytes = (size_t(5) << 20) + 12345, pad = 64;
  std::vector<unsigned char> buf(bytes + 2 * pad, 0xAB);
  be->zero(buf.data() + pad, bytes);
  for (size_t i = 0; i < buf.size(); ++i) {
    const bool inside = i >= pad && i < pad + bytes;
    ASSERT_EQ(buf[i], inside ? 0 : 0xAB) << "byte " << i;
  }
}

TEST(CpuMemory, StridedCopyOverwriteAndAccumulate) {
  auto be = cpu();
  const int rows = 63, cols = 17, src_ld = 51, dst_ld = 29;
  Vec src = random_vector(size_t(rows) * src_ld, 2);
  Vec dst0 = random_vector(size_t(rows) * dst_ld, 3);
  for (bool accumulate : {false, true}) {
    Vec dst = dst0;
    be->strided_copy(dst.data(), dst_ld, src.data() + 5, src_ld, rows, cols, accumulate);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < dst_ld; ++c) {
        float want = dst0[r * dst_ld + c];
        if (c < cols) want = (accumulate ? want : 0.f) + src[r * src_ld + 5 + c];
        ASSERT_EQ(dst[r * dst_ld + c], want) << "r=" << r << " c=" << c << " acc=" << accumulate;
      }
  }
}

TEST(CpuMemory, GatherAndScatterAddRowsExact) {
  auto be = cpu();
  const int rows = 41, M = 19, C = 23;
  Vec inp = random_vector(size_t(rows) * C, 4);
  std::vector<int> idx(M);
  for (int i = 0; i < M; ++i) idx[i] = (i * 7 + 3) % rows;  // distinct, unordered
  Vec out(size_t(M) * C, -1.f);
  be->gather_rows(out.data(), inp.data(), idx.data(), M, C);
  for (int i = 0; i < M; ++i)
    for (int c = 0; c < C; ++c) ASSERT_EQ(out[i * C + c], inp[idx[i] * C + c]);

  Vec dinp = random_vector(size_t(rows) * C, 5), want = dinp;
  Vec dout = random_vector(size_t(M) * C, 6);
  be->scatter_add_rows(dinp.data(), dout.data(), idx.data(), M, C);
  for (int i = 0; i < M; ++i)
    for (int c = 0; c < C; ++c) want[idx[i] * C + c] += dout[i * C + c];
  EXPECT_EQ(dinp, want);
}

TEST(CpuMemory, AddAndScaleInplace) {
  auto be = cpu();
  const size_t n = 100003;  // crosses the parallel threshold, odd
  Vec y = random_vector(n, 7), x = random_vector(n, 8), want(n);
  for (size_t i = 0; i < n; ++i) want[i] = y[i] + x[i];
  be->add_inplace(y.data(), x.data(), n);
  EXPECT_EQ(y, want);
  for (size_t i = 0; i < n; ++i) want[i] = y[i] * -0.37f;
  be->scale_inplace(y.data(), -0.37f, n);
  EXPECT_EQ(y, want);
}

// ---------------------------------------------------------------- activations
double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double logsigmoid_d(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }

// Forward values against double formulas, including the region where naive forms overflow.
TEST(CpuActivations, ForwardMatchesDoubleFormulas) {
  auto be = cpu();
  Vec x = random_vector(20011, 9, -12.f, 12.f);  // > one chunk, odd length
  for (float extreme : {-100.f, 100.f, -1e4f, 1e4f, -88.f, 88.f, 0.f}) x.push_back(extreme);
  const size_t n = x.size();
  Vec up = random_vector(n, 10), silu(n), ls(n), sw(n);
  const float scale = 1.f / 16.f;
  be->silu_forward(silu.data(), x.data(), n);
  be->logsigmoid_forward(ls.data(), x.data(), scale, n);
  be->swiglu_forward(sw.data(), x.data(), up.data(), n);
  for (size_t i = 0; i < n; ++i) {
    double xi = x[i];
    double s = xi * sigmoid_d(xi);
    ASSERT_NEAR(silu[i], s, 2e-6 * (1 + std::fabs(s))) << "silu x=" << xi;
    ASSERT_NEAR(sw[i], s * up[i], 2e-6 * (1 + std::fabs(s))) << "swiglu x=" << xi;
    double l = scale * logsigmoid_d(xi);
    ASSERT_NEAR(ls[i], l, 2e-6 * (1e-3 + std::fabs(l))) << "logsigmoid x=" << xi;
  }
}

TEST(CpuActivations, LogsigmoidStableAtLargeMagnitude) {
  auto be = cpu();
  Vec x = {100.f, -100.f, 1e4f, -1e4f, 30.f, -30.f};
  const size_t n = x.size();
  Vec out(n), din(n, 0.f), dout(n, 1.f);
  be->logsigmoid_forward(out.data(), x.data(), 1.f, n);
  be->logsigmoid_backward(din.data(), dout.data(), x.data(), 1.f, n, true);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(out[i]) && std::isfinite(din[i])) << "x=" << x[i];
    EXPECT_NEAR(out[i], logsigmoid_d(x[i]), 1e-6 * (1 + std::fabs(x[i]))) << "x=" << x[i];
    EXPECT_NEAR(din[i], sigmoid_d(-x[i]), 1e-7) << "x=" << x[i];  // d/dx = sigmoid(-x)
  }
  EXPECT_EQ(out[1], -100.f);
  EXPECT_EQ(din[1], 1.f);
  EXPECT_LE(out[0], 0.f);
  EXPECT_GE(out[0], -1e-40f);
  // Relative accuracy of the small tail: logsigmoid(30) = -exp(-30)(1 + O(e^-30)).
  EXPECT_NEAR(out[4] / -std::exp(-30.0), 1.0, 1e-5);
  EXPECT_NEAR(din[4] / std::exp(-30.0), 1.0, 1e-5);
  Vec silu(n), dsilu(n, 0.f);
  be->silu_forward(silu.data(), x.data(), n);
  be->silu_backward(dsilu.data(), dout.data(), x.data(), n, true);
  for (size_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(silu[i]) && std::isfinite(dsilu[i]));
  EXPECT_EQ(silu[0], 100.f);
  EXPECT_NEAR(silu[1], 0.f, 1e-30);
}

TEST(CpuActivations, GradientsByFiniteDifferences) {
  auto be = cpu();
  const size_t n = size_t(kN) * kC;
  Vec x = random_vector(n, 11, -4.f, 4.f), up = random_vector(n, 12);
  Vec w = random_vector(n, 13), out(n);
  const float scale = 0.3f;

  auto silu_loss = [&] { be->silu_forward(out.data(), x.data(), n); return dot(out, w); };
  Vec dx = zeros(n);
  be->silu_backward(dx.data(), w.data(), x.data(), n, true);
  EXPECT_FD_OK(fd_check(silu_loss, x, dx), "silu dinp");
  expect_accumulates([&](float* g) { be->silu_backward(g, w.data(), x.data(), n, true); }, dx, 14,
                     "silu");

  auto ls_loss = [&] {
    be->logsigmoid_forward(out.data(), x.data(), scale, n);
    return dot(out, w);
  };
  dx = zeros(n);
  be->logsigmoid_backward(dx.data(), w.data(), x.data(), scale, n, true);
  EXPECT_FD_OK(fd_check(ls_loss, x, dx), "logsigmoid dinp");
  expect_accumulates(
      [&](float* g) { be->logsigmoid_backward(g, w.data(), x.data(), scale, n, true); }, dx, 15,
      "logsigmoid");

  auto sw_loss = [&] {
    be->swiglu_forward(out.data(), x.data(), up.data(), n);
    return dot(out, w);
  };
  Vec dgate = zeros(n), dup = zeros(n);
  be->swiglu_backward(dgate.data(), dup.data(), w.data(), x.data(), up.data(), n, true);
  EXPECT_FD_OK(fd_check(sw_loss, x, dgate), "swiglu dgate");
  EXPECT_FD_OK(fd_check(sw_loss, up, dup), "swiglu dup");
  expect_accumulates(
      [&](float* g) { be->swiglu_backward(g, nullptr, w.data(), x.data(), up.data(), n, true); },
      dgate, 16, "swiglu dgate");
  expect_accumulates(
      [&](float* g) { be->swiglu_backward(nullptr, g, w.data(), x.data(), up.data(), n, true); },
      dup, 17, "swiglu dup");
}

// ---------------------------------------------------------------- embedding
TEST(CpuEmbedding, ForwardGathersAndBackwardAddsRepeatedTokens) {
  auto be = cpu();
  const int D = kC;
  std::vector<int> tokens(kN);
  for (int i = 0; i < kN; ++i) tokens[i] = (i * i + 3) % 11;  // many repeats, rows 11.. unused
  Vec wte = random_vector(size_t(kV) * D, 20), out(size_t(kN) * D);
  be->embedding_forward(out.data(), tokens.data(), wte.data(), kN, D);
  for (int i = 0; i < kN; ++i)
    for (int c = 0; c < D; ++c) ASSERT_EQ(out[i * D + c], wte[tokens[i] * D + c]);

  Vec w = random_vector(out.size(), 21);
  auto loss = [&] {
    be->embedding_forward(out.data(), tokens.data(), wte.data(), kN, D);
    return dot(out, w);
  };
  Vec dwte = zeros(wte.size());
  be->embedding_backward(dwte.data(), w.data(), tokens.data(), kN, D);
  std::vector<double> ref(wte.size(), 0.0);
  for (int i = 0; i < kN; ++i)
    for (int c = 0; c < D; ++c) ref[tokens[i] * D + c] += w[i * D + c];
  for (size_t k = 0; k < ref.size(); ++k) ASSERT_NEAR(dwte[k], ref[k], 1e-5) << k;
  EXPECT_FD_OK(fd_check(loss, wte, dwte, 1e-2, 2e-3, 2e-2, 400), "embedding dwte");
  expect_accumulates([&](float* g) { be->embedding_backward(g, w.data(), tokens.data(), kN, D); },
                     dwte, 22, "embedding");
}

// ---------------------------------------------------------------- RMSNorm
TEST(CpuRmsnorm, ForwardMatchesDouble) {
  auto be = cpu();
  const float eps = 1e-5f;
  Vec x = random_vector(size_t(kN) * kC, 30, -2.f, 2.f), wt = random_vector(kC, 31, 0.5f, 1.5f);
  Vec out(x.size()), rstd(kN);
  be->rmsnorm_forward(out.data(), rstd.data(), x.data(), wt.data(), kN, kC, eps);
  for (int i = 0; i < kN; ++i) {
    double ms = 0;
    for (int c = 0; c < kC; ++c) ms += double(x[i * kC + c]) * x[i * kC + c];
    double r = 1.0 / std::sqrt(ms / kC + eps);
    ASSERT_NEAR(rstd[i], r, 1e-6 * r);
    for (int c = 0; c < kC; ++c)
      ASSERT_NEAR(out[i * kC + c], x[i * kC + c] * r * wt[c], 2e-6 * (1 + r * 2));
  }
}

TEST(CpuRmsnorm, GradientsByFiniteDifferences) {
  auto be = cpu();
  const float eps = 1e-5f;
  Vec x = random_vector(size_t(kN) * kC, 32, -2.f, 2.f), wt = random_vector(kC, 33, 0.5f, 1.5f);
  Vec w = random_vector(x.size(), 34), out(x.size()), rstd(kN);
  auto loss = [&] {
    be->rmsnorm_forward(out.data(), rstd.data(), x.data(), wt.data(), kN, kC, eps);
    return dot(out, w);
  };
  loss();
  Vec dx = zeros(x.size()), dwt = zeros(kC);
  be->rmsnorm_backward(dx.data(), dwt.data(), w.data(), x.data(), wt.data(), rstd.data(), kN, kC,
                       true);
  EXPECT_FD_OK(fd_check(loss, x, dx), "rmsnorm dinp");
  EXPECT_FD_OK(fd_check(loss, wt, dwt), "rmsnorm dweight");
  loss();  // restore rstd for the unperturbed input
  expect_accumulates(
      [&](float* g) {
        be->rmsnorm_backward(g, nullptr, w.data(), x.data(), wt.data(), rstd.data(), kN, kC, true);
      },
      dx, 35, "rmsnorm dinp");
  expect_accumulates(
      [&](float* g) {
        be->rmsnorm_backward(nullptr, g, w.data(), x.data(), wt.data(), rstd.data(), kN, kC, true);
      },
      dwt, 36, "rmsnorm dweight");
}

// dweight is a reduction over rows: it must give the same bits for 1 and several threads.
TEST(CpuRmsnorm, WeightGradientIndependentOfThreadCount) {
  auto be = cpu();
  const int N = 4099, C = 64;
  Vec x = random_vector(size_t(N) * C, 37), wt = random_vector(C, 38), dy = random_vector(x.size(), 39);
  Vec out(x.size()), rstd(N);
  be->rmsnorm_forward(out.data(), rstd.data(), x.data(), wt.data(), N, C, 1e-5f);
  const int saved = omp_get_max_threads();
  Vec dw1 = zeros(C), dw4 = zeros(C);
  omp_set_num_threads(1);
  be->rmsnorm_backward(nullptr, dw1.data(), dy.data(), x.data(), wt.data(), rstd.data(), N, C,
                       true);
  omp_set_num_threads(4);
  be->rmsnorm_backward(nullptr, dw4.data(), dy.data(), x.data(), wt.data(), rstd.data(), N, C,
                       true);
  omp_set_num_threads(saved);
  EXPECT_EQ(dw1, dw4);
}

// ---------------------------------------------------------------- linear
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
    const int saved = omp_get_max_threads();
    for (int rep = 0; rep < 2; ++rep) {
      omp_set_num_threads(rep == 0 ? 1 : 3);
      out[rep].resize(dy.size());
      dx[rep] = zeros(x.size());
      dW[rep] = zeros(W.size());
      db[rep] = zeros(OC);
      be->linear_forward(out[rep].data(), x.data(), W.data(), b.data(), N, C, OC);
      be->linear_backward(dx[rep].data(), dW[rep].data(), db[rep].data(), dy.data(), x.data(),
                          W.data(), N, C, OC, true);
    }
    omp_set_num_threads(saved);
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

// Stacked projections against the level below, one linear op per part (forward, dinp in both
// gradient modes, dweight), on odd part widths and an odd C; N small (one block), mid (several
// row blocks and depth groups) and deep (several 512-row slices per depth group, ragged).
// Also the same bits with 1 and 3 threads.
TEST(CpuLinearStacked, MatchesOneLinearPerPartAndIsThreadCountIndependent) {
  auto be = cpu();
  const std::vector<int> ocs = {37, 5, 60, 1};
  const int parts = int(ocs.size()), W = stacked_width(ocs.data(), parts), C = 61;
  for (int N : {63, 1500, 9001}) {
    Vec x = random_vector(size_t(N) * C, 60), Wt = random_vector(size_t(W) * C, 61);
    std::vector<Vec> dy(parts);
    for (int i = 0; i < parts; ++i) dy[i] = random_vector(size_t(N) * ocs[i], 62 + i);
    std::vector<const float*> dyp;
    for (auto& d : dy) dyp.push_back(d.data());
    const Vec dx_init = random_vector(size_t(N) * C, 70), dW_init = random_vector(Wt.size(), 71);

    // Level below: one linear_forward / linear_backward per part (dinp accumulated over parts).
    std::vector<Vec> y_ref(parts);
    Vec dx_ref = dx_init, dW_ref = dW_init;
    for (int i = 0, row = 0; i < parts; row += ocs[i], ++i) {
      y_ref[i].resize(size_t(N) * ocs[i]);
      const float* w = Wt.data() + size_t(row) * C;
      be->linear_forward(y_ref[i].data(), x.data(), w, nullptr, N, C, ocs[i]);
      be->linear_backward(dx_ref.data(), dW_ref.data() + size_t(row) * C, nullptr, dy[i].data(),
                          x.data(), w, N, C, ocs[i], true);
    }

    std::vector<Vec> y[2];
    Vec dx_acc[2], dx_over[2], dW[2];
    const int saved = omp_get_max_threads();
    for (int rep = 0; rep < 2; ++rep) {
      omp_set_num_threads(rep == 0 ? 1 : 3);
      y[rep].assign(parts, Vec());
      std::vector<float*> yp;
      for (int i = 0; i < parts; ++i) {
        y[rep][i].assign(size_t(N) * ocs[i], std::nanf(""));
        yp.push_back(y[rep][i].data());
      }
      be->linear_stacked_forward(yp.data(), ocs.data(), parts, x.data(), Wt.data(), N, C);
      dx_acc[rep] = dx_init;
      dW[rep] = dW_init;
      be->linear_stacked_backward(dx_acc[rep].data(), dW[rep].data(), dyp.data(), ocs.data(),
                                  parts, x.data(), Wt.data(), N, C, true);
      dx_over[rep].assign(x.size(), std::nanf(""));  // overwrite mode never reads dinp
      be->linear_stacked_backward(dx_over[rep].data(), nullptr, dyp.data(), ocs.data(), parts,
                                  x.data(), Wt.data(), N, C, false);
    }
    omp_set_num_threads(saved);
    for (int rep : {0, 1}) {
      SCOPED_TRACE("N=" + std::to_string(N) + (rep ? " 3 threads" : " 1 thread"));
      EXPECT_EQ(y[0], y[rep]);
      EXPECT_EQ(dx_acc[0], dx_acc[rep]);
      EXPECT_EQ(dW[0], dW[rep]);
      // Sums of C (forward), W (dinp) or N (dweight) products of size ~1, in another order.
      for (int i = 0; i < parts; ++i)
        EXPECT_LT(max_abs_diff(y[rep][i], y_ref[i]), 1e-5) << "part " << i;
      EXPECT_LT(max_abs_diff(dx_acc[rep], dx_ref), 1e-5);
      for (size_t e = 0; e < dx_over[rep].size(); ++e)
        ASSERT_NEAR(dx_over[rep][e], dx_acc[rep][e] - dx_init[e], 1e-5) << "dinp overwrite " << e;
      EXPECT_LT(max_abs_diff(dW[rep], dW_ref), 2e-6 * std::sqrt(double(N)) * 4);
    }
  }
}

// Throughput probe, not part of CI: run with
//   ./test_basic_ops --gtest_also_run_disabled_tests --gtest_filter='*LinearThroughput*'
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

// ---------------------------------------------------------------- softmax cross-entropy
TEST(CpuXent, ForwardMatchesDoubleAndArgmaxTakesLowestTie) {
  auto be = cpu();
  Vec logits = random_vector(size_t(kN) * kV, 60, -5.f, 5.f);
  std::vector<int> targets(kN);
  for (int i = 0; i < kN; ++i) targets[i] = (i * 13) % kV;
  // Row 0: a tie for the max at 3 and 7. Row 1: huge logits (naive exp would overflow).
  logits[3] = logits[7] = 9.f;
  for (int j = 0; j < kV; ++j) logits[kV + j] += 1000.f;
  Vec losses(kN), probs(logits.size());
  std::vector<int> pred(kN, -1);
  be->xent_forward(losses.data(), probs.data(), pred.data(), logits.data(), targets.data(), kN, kV);
  EXPECT_EQ(pred[0], 3);
  for (int i = 0; i < kN; ++i) {
    const float* z = &logits[size_t(i) * kV];
    double mx = z[0];
    int arg = 0;
    for (int j = 1; j < kV; ++j)
      if (z[j] > mx) { mx = z[j]; arg = j; }
    double se = 0;
    for (int j = 0; j < kV; ++j) se += std::exp(double(z[j]) - mx);
    double lse = mx + std::log(se);
    ASSERT_TRUE(std::isfinite(losses[i]));
    ASSERT_NEAR(losses[i], lse - z[targets[i]], 1e-5 * (1 + std::fabs(mx))) << "row " << i;
    EXPECT_EQ(pred[i], arg) << "row " << i;
    double psum = 0;
    for (int j = 0; j < kV; ++j) {
      ASSERT_NEAR(probs[i * kV + j], std::exp(double(z[j]) - lse), 1e-6) << i << "," << j;
      psum += probs[i * kV + j];
    }
    ASSERT_NEAR(psum, 1.0, 1e-5);
  }
}

TEST(CpuXent, GradientByFiniteDifferences) {
  auto be = cpu();
  Vec logits = random_vector(size_t(kN) * kV, 61, -3.f, 3.f);
  std::vector<int> targets(kN);
  for (int i = 0; i < kN; ++i) targets[i] = (i * 17 + 5) % kV;
  Vec losses(kN), probs(logits.size());
  std::vector<int> pred(kN);
  const float dloss_scale = 1.f / kN;  // mean loss
  auto loss = [&] {
    be->xent_forward(losses.data(), probs.data(), pred.data(), logits.data(), targets.data(), kN,
                     kV);
    double s = 0;
    for (float l : losses) s += l;
    return s * dloss_scale;
  };
  loss();
  Vec dlogits = zeros(logits.size());
  be->xent_backward(dlogits.data(), probs.data(), targets.data(), dloss_scale, kN, kV, true);
  // Gradients are O(1/M); tolerances scaled down accordingly.
  EXPECT_FD_OK(fd_check(loss, logits, dlogits, 1e-2, 2e-5, 2e-2, 300), "xent dlogits");
  loss();
  expect_accumulates(
      [&](float* g) {
        be->xent_backward(g, probs.data(), targets.data(), dloss_scale, kN, kV, true);
      },
      dlogits, 62, "xent");
}

// ---------------------------------------------------------------- optimiser
TEST(CpuOptim, SumSquaresDoubleAndThreadIndependent) {
  auto be = cpu();
  const size_t n = 300007;
  Vec x = random_vector(n, 70, -3.f, 3.f);
  double ref = 0;
  for (float v : x) ref += double(v) * v;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  double s1 = be->sum_squares(x.data(), n);
  omp_set_num_threads(3);
  double s3 = be->sum_squares(x.data(), n);
  omp_set_num_threads(saved);
  EXPECT_NEAR(s1, ref, 1e-10 * ref);
  EXPECT_EQ(s1, s3);
  EXPECT_EQ(be->sum_squares(x.data(), 0), 0.0);
}

// Scalar transcription of torch.optim.AdamW's single-tensor step, in double.
struct AdamWReference {
  double lr, beta1, beta2, eps, wd;
  std::vector<double> p, m, v;
  void step(const Vec& grad, double grad_scale, int t) {
    const double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = double(grad[i]) * grad_scale;
      p[i] *= 1 - lr * wd;
      m[i] += (g - m[i]) * (1 - beta1);  // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * beta2 + (1 - beta2) * g * g;
      double denom = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
      p[i] -= lr / bc1 * m[i] / denom;
    }
  }
};

void run_adamw_case(float lr, float beta1, float beta2, float eps, float wd, float grad_scale,
                    float grad_size, unsigned seed) {
  auto be = cpu();
  const size_t n = 40009;  // > one parallel block, odd
  Vec p = random_vector(n, seed, -1.f, 1.f), m = zeros(n), v = zeros(n);
  AdamWReference ref{lr, beta1, beta2, eps, wd, {}, std::vector<double>(n, 0.0),
                     std::vector<double>(n, 0.0)};
  ref.p.assign(p.begin(), p.end());
  for (int t = 1; t <= 7; ++t) {
    Vec g = random_vector(n, seed * 100 + t, -grad_size, grad_size);
    g[0] = 0.f;  // zero gradient: only weight decay moves it
    be->adamw_update(p.data(), g.data(), m.data(), v.data(), n, lr, beta1, beta2, eps, wd, t,
                     grad_scale);
    ref.step(g, grad_scale, t);
  }
  // fp32 moments carry rounding of order 1e-7 of the gradient scale (m can cancel to ~0, so the
  // tolerance is absolute in units of |g|, |g|^2); the parameter change per step is <= ~lr, so
  // its fp32 error is far below 1e-6 + 1e-5 |p|.
  const double gmax = double(grad_size) * grad_scale;
  double worst_p = 0, worst_m = 0, worst_v = 0;
  for (size_t i = 0; i < n; ++i) {
    worst_p = std::max(worst_p, std::fabs(p[i] - ref.p[i]) / (1e-6 + 1e-5 * std::fabs(ref.p[i])));
    worst_m = std::max(worst_m, std::fabs(m[i] - ref.m[i]) / (1e-6 * gmax));
    worst_v = std::max(worst_v, std::fabs(v[i] - ref.v[i]) / (1e-6 * gmax * gmax));
  }
  EXPECT_LE(worst_p, 1.0) << "param differs from the PyTorch AdamW transcription";
  EXPECT_LE(worst_m, 1.0) << "exp_avg differs";
  EXPECT_LE(worst_v, 1.0) << "exp_avg_sq differs";
  // A sanity check that the comparison can fail: the parameters did move.
  Vec p0 = random_vector(n, seed, -1.f, 1.f);
  EXPECT_GT(compare(p, p0).max_abs, 2 * lr);
}

TEST(CpuOptim, AdamWMatchesPyTorchTranscription) {
  run_adamw_case(1e-2f, 0.9f, 0.999f, 1e-8f, 0.f, 1.f, 1.f, 71);
}

TEST(CpuOptim, AdamWWithWeightDecayAndGradScale) {
  run_adamw_case(3e-3f, 0.8f, 0.95f, 1e-8f, 0.1f, 0.25f, 2.f, 72);
}

// eps comparable to sqrt(vhat): checks eps is added to sqrt(vhat), after bias correction.
TEST(CpuOptim, AdamWEpsPlacement) {
  run_adamw_case(1e-2f, 0.9f, 0.99f, 1e-3f, 0.05f, 1.f, 2e-3f, 73);
}

}  // namespace
}  // namespace statex
