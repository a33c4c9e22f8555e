// The `accumulate` flag of the CPU backward ops (sim/core/ops.def): with accumulate = false an
// op overwrites its input (activation) gradients without reading them, and still adds into its
// parameter gradients. Every op is run twice on the same random inputs at odd shapes:
//   1. accumulate = true into zeroed input gradients,
//   2. accumulate = false into input gradients filled with NaN (a read would leave NaN).
// Parameter gradients start at zero both times. The two must agree bit for bit: overwriting is
// "the same sum without the old value", and 0 + x == x exactly. (Accumulation into non-zero
// gradients is checked op by op in tests/ops/test_<stem>.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "sim/core/backend.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

void expect_overwrite_matches_accumulate_from_zero(const std::string& op,
                                                   const std::vector<Vec*>& input_grads,
                                                   const std::vector<Vec*>& param_grads,
                                                   const std::function<void(bool)>& run) {
  auto fill = [](const std::vector<Vec*>& vs, float v) {
    for (Vec* x : vs) std::fill(x->begin(), x->end(), v);
  };
  fill(input_grads, 0.f);
  fill(param_grads, 0.f);
  run(/*accumulate=*/true);
  std::vector<Vec> want;
  for (const auto* group : {&input_grads, &param_grads})
    for (Vec* x : *group) want.push_back(*x);
  fill(input_grads, std::numeric_limits<float>::quiet_NaN());
  fill(param_grads, 0.f);
  run(/*accumulate=*/false);
  size_t k = 0;
  for (const auto* group : {&input_grads, &param_grads}) {
    for (Vec* x : *group) {
      const bool is_input = group == &input_grads;
      for (size_t i = 0; i < x->size(); ++i) {
        const float got = (*x)[i], ref = want[k][i];
        ASSERT_TRUE(got == ref || (std::isnan(got) && std::isnan(ref)))
            << op << ": " << (is_input ? "input" : "parameter") << " gradient #" << k << " element "
            << i << ": overwrite gives " << got << ", accumulate from zero " << ref;
      }
      ++k;
    }
  }
}

class GradOverwrite : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_F(GradOverwrite, Activations) {
  const size_t n = 10007;
  Vec x = random_vector(n, 1, -8.f, 8.f), up = random_vector(n, 2), dy = random_vector(n, 3);
  Vec d1(n), d2(n);
  expect_overwrite_matches_accumulate_from_zero("silu_backward", {&d1}, {}, [&](bool acc) {
    be->silu_backward(d1.data(), dy.data(), x.data(), n, acc);
  });
  expect_overwrite_matches_accumulate_from_zero("logsigmoid_backward", {&d1}, {}, [&](bool acc) {
    be->logsigmoid_backward(d1.data(), dy.data(), x.data(), 1.f / 16, n, acc);
  });
  expect_overwrite_matches_accumulate_from_zero("swiglu_backward", {&d1, &d2}, {}, [&](bool acc) {
    be->swiglu_backward(d1.data(), d2.data(), dy.data(), x.data(), up.data(), n, acc);
  });
}

TEST_F(GradOverwrite, NormsAndLinear) {
  const int N = 63, C = 60, OC = 37;
  Vec x = random_vector(size_t(N) * C, 4, -2.f, 2.f), g = random_vector(x.size(), 5, -4.f, 4.f);
  Vec w = random_vector(C, 6, 0.5f, 1.5f), dy = random_vector(x.size(), 7);
  Vec out(x.size()), rstd(N), dx(x.size()), dg(x.size()), dw(C);
  be->rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
  expect_overwrite_matches_accumulate_from_zero("rmsnorm_backward", {&dx}, {&dw}, [&](bool acc) {
    be->rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), N, C,
                         acc);
  });
  be->gla_norm_forward(out.data(), rstd.data(), x.data(), g.data(), w.data(), N, C, 1e-5f);
  expect_overwrite_matches_accumulate_from_zero(
      "gla_norm_backward", {&dx, &dg}, {&dw}, [&](bool acc) {
        be->gla_norm_backward(dx.data(), dg.data(), dw.data(), dy.data(), x.data(), g.data(),
                              w.data(), rstd.data(), N, C, acc);
      });
  const int groups = 4;  // C / groups = 15 channels per group
  Vec grstd(size_t(N) * groups);
  be->gated_rmsnorm_forward(out.data(), grstd.data(), x.data(), g.data(), w.data(), N, C,
                            C / groups, 1e-5f);
  expect_overwrite_matches_accumulate_from_zero(
      "gated_rmsnorm_backward", {&dx, &dg}, {&dw}, [&](bool acc) {
        be->gated_rmsnorm_backward(dx.data(), dg.data(), dw.data(), dy.data(), x.data(), g.data(),
                                   w.data(), grstd.data(), N, C, C / groups, acc);
      });
  Vec W = random_vector(size_t(OC) * C, 8), dout = random_vector(size_t(N) * OC, 9);
  Vec dW(W.size()), db(OC);
  expect_overwrite_matches_accumulate_from_zero(
      "linear_backward", {&dx}, {&dW, &db}, [&](bool acc) {
        be->linear_backward(dx.data(), dW.data(), db.data(), dout.data(), x.data(), W.data(), N, C,
                            OC, acc);
      });
}

TEST_F(GradOverwrite, Conv1dAndMamba2Elementwise) {
  const int B = 2, T = 63, C = 60, W = 4, H = 5, P = 7;
  const size_t n = size_t(B) * T * C;
  Vec x = random_vector(n, 10), w = random_vector(size_t(C) * W, 11), dy = random_vector(n, 12);
  Vec dx(n), dw(w.size()), db(C);
  expect_overwrite_matches_accumulate_from_zero(
      "conv1d_backward", {&dx}, {&dw, &db}, [&](bool acc) {
        be->conv1d_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), B, T, C,
                            W, acc);
      });
  const int N = B * T;
  Vec raw = random_vector(size_t(N) * H, 13, -5.f, 5.f), bias = random_vector(H, 14);
  Vec ddt = random_vector(raw.size(), 15), draw(raw.size()), dbias(H);
  expect_overwrite_matches_accumulate_from_zero(
      "softplus_bias_backward", {&draw}, {&dbias}, [&](bool acc) {
        be->softplus_bias_backward(draw.data(), dbias.data(), ddt.data(), raw.data(), bias.data(),
                                   N, H, acc);
      });
  Vec xs = random_vector(size_t(N) * H * P, 16), dys = random_vector(xs.size(), 17);
  Vec D = random_vector(H, 18), dxs(xs.size()), dD(H);
  expect_overwrite_matches_accumulate_from_zero("ssd_dskip_backward", {&dxs}, {&dD}, [&](bool acc) {
    be->ssd_dskip_backward(dxs.data(), dD.data(), dys.data(), xs.data(), D.data(), N, H, P, acc);
  });
}

TEST_F(GradOverwrite, GlaScan) {
  const int B = 2, T = 63, H = 3, K = 5, V = 7, chunk = 16;
  const size_t nk = size_t(B) * T * H * K, nv = size_t(B) * T * H * V;
  Vec q = random_vector(nk, 20), k = random_vector(nk, 21), v = random_vector(nv, 22);
  Vec gk = random_vector(nk, 23, -3.f, -0.01f), dout = random_vector(nv, 24);
  Vec dfin = random_vector(size_t(B) * H * K * V, 25);
  Vec dq(nk), dk(nk), dv(nv), dgk(nk);
  expect_overwrite_matches_accumulate_from_zero(
      "gla_backward", {&dq, &dk, &dv, &dgk}, {}, [&](bool acc) {
        be->gla_backward(dq.data(), dk.data(), dv.data(), dgk.data(), dout.data(), dfin.data(),
                         q.data(), k.data(), v.data(), gk.data(), B, T, H, K, V, 0.4f, chunk, acc);
      });
}

TEST_F(GradOverwrite, SsdScanBothForms) {
  // Per-step decays of 1.5..3.5 over 16-step chunks: heads on both sides of the factored
  // form's span limit (see SsdChunkedVsReference.BothFormsInOneCall).
  const int B = 3, T = 63, H = 4, P = 5, G = 2, N = 7, chunk = 16;
  const size_t nx = size_t(B) * T * H * P, nb = size_t(B) * T * G * N, nd = size_t(B) * T * H;
  Vec x = random_vector(nx, 30), dy = random_vector(nx, 31), Bm = random_vector(nb, 32);
  Vec Cm = random_vector(nb, 33), dt = random_vector(nd, 34, 1.5f, 3.5f);
  Vec A_log(H, 0.f), dfin = random_vector(size_t(B) * H * P * N, 35);
  Vec dx(nx), ddt(nd), dA(H), dB(nb), dC(nb);
  expect_overwrite_matches_accumulate_from_zero(
      "ssd_backward", {&dx, &ddt, &dB, &dC}, {&dA}, [&](bool acc) {
        be->ssd_backward(dx.data(), ddt.data(), dA.data(), dB.data(), dC.data(), dy.data(),
                         dfin.data(), x.data(), dt.data(), A_log.data(), Bm.data(), Cm.data(), B, T,
                         H, P, G, N, chunk, acc);
      });
}

TEST_F(GradOverwrite, SoftmaxXentAlsoInPlace) {
  const int M = 37, V = 53;
  Vec logits = random_vector(size_t(M) * V, 40, -3.f, 3.f), probs(logits.size()), losses(M);
  std::vector<int> targets(M), pred(M);
  for (int i = 0; i < M; ++i) targets[i] = (i * 7) % V;
  be->xent_forward(losses.data(), probs.data(), pred.data(), logits.data(), targets.data(), M, V);
  Vec dlogits(probs.size());
  expect_overwrite_matches_accumulate_from_zero("xent_backward", {&dlogits}, {}, [&](bool acc) {
    be->xent_backward(dlogits.data(), probs.data(), targets.data(), 1.f / M, M, V, acc);
  });
  // In place (dlogits = probs), as the model runs it.
  Vec in_place = probs;
  be->xent_backward(in_place.data(), in_place.data(), targets.data(), 1.f / M, M, V, false);
  EXPECT_EQ(in_place, dlogits);
}

}  // namespace
}  // namespace statex
