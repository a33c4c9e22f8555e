// The whole language model on the CPU backend: finite-difference gradients of every parameter
// tensor, chunk-size invariance, state-size formulas, parameter names / shapes
// (docs/design.md §1, §4) and config validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "sim/model/mixer.h"
#include "sim/model/output_rows.h"
#include "sim/model/model.h"
#include "sim/ops/cpu/cpu_backend.h"
#include "sim/model/param_layout.h"
#include "sim/model/state_size.h"
#include "tests/support/model_harness.h"

using namespace statex;
using namespace statex::testing;

namespace {

// B = 2, T = 15 with chunk 4: three full chunks and a partial one of 3 tokens.
constexpr int kB = 2, kT = 15, kChunk = 4;

void run_whole_model_fd(const ModelConfig& cfg, const std::string& what, unsigned seed) {
  MqarBatch b = random_batch(kB, kT, cfg.vocab_size, seed);
  ModelRig rig(cfg, b, kChunk, seed);
  std::vector<float> p = rig.model->get_params();
  perturb_params(p, seed + 1);
  liven_gates(rig.model->table(), p, seed + 2);
  std::printf("%s (%lld params):\n", what.c_str(), (long long)rig.model->n_params());
  auto rows = whole_model_fd(rig, p);
  EXPECT_EQ(rows.size(), rig.model->table().entries().size());
  expect_all_tensors_ok(rows, what);
}

// GLA configs use gate_logit_normalizer 1 (default 16) so that the forget gate moves the loss
// enough for its gradient to be checked well above the FD noise.
TEST(ModelGrad, GlaWithShortConv) {
  ModelConfig c = tiny_gla(/*short_conv=*/true);
  c.gate_logit_normalizer = 1;
  run_whole_model_fd(c, "gla+shortconv", 11);
}

TEST(ModelGrad, GlaNoShortConvWithMlpUntiedHead) {
  ModelConfig c = tiny_gla(/*short_conv=*/false);
  c.gate_logit_normalizer = 1;
  c.mlp = true;
  c.mlp_hidden = 14;
  c.tie_embeddings = false;
  run_whole_model_fd(c, "gla+mlp+untied", 12);
}

TEST(ModelGrad, Mamba2OneGroup) {
  ModelConfig c = tiny_mamba2(/*G=*/1, /*N=*/8, /*P=*/8);  // 5 heads of 8
  run_whole_model_fd(c, "mamba2 G=1", 13);
}

// A mixer's tail on a subset of the rows (the model's last layer: the labelled rows, gathered by
// TailRows) against the level below, the same mixer on all rows: the output at those rows, and with dout
// zero off those rows, the same input gradient and parameter gradients.
void check_output_rows_subset(const ModelConfig& cfg, unsigned seed) {
  CpuBackend be;
  const ParamTable table = build_param_table(cfg);
  std::vector<float> params;
  init_params(cfg, table, seed, params);
  perturb_params(params, seed + 1);
  liven_gates(table, params, seed + 2);
  const int N = kB * kT, D = cfg.d_model;
  const RunShape s{kB, kT};
  const std::vector<int> idx = {29, 3, 14, 15, 0, 22};  // distinct, unordered, both sequences
  const int M = int(idx.size());
  const std::vector<float> in = random_vector(size_t(N) * D, seed + 3);
  const std::vector<float> dout_sub = random_vector(size_t(M) * D, seed + 4);
  std::vector<float> dout_full(size_t(N) * D, 0.f);
  for (int r = 0; r < M; ++r)
    std::copy_n(&dout_sub[size_t(r) * D], D, &dout_full[size_t(idx[r]) * D]);

  struct Result { std::vector<float> out, din, grads; };
  auto run = [&](bool subset) {
    std::vector<float> p = params, g(params.size(), 0.f);
    MixerBinding bind{&table, model_names(cfg).layer(0) + model_names(cfg).mixer, p.data(),
                      g.data()};
    auto mixer = make_mixer(cfg, 0, be, bind, N, kChunk);
    const Mixer::TailInputs io = mixer->tail_inputs();
    TailRows tail(be, io.width, *io.a, *io.b);
    const OutputRows rows = subset ? OutputRows{idx.data(), M} : OutputRows{};
    Result r{std::vector<float>(size_t(rows.count(N)) * D), std::vector<float>(size_t(N) * D), {}};
    // As the model runs a layer: the scan on all rows, the tail on the (gathered) output rows.
    mixer->scan_forward(in.data(), s);
    TailRows::Buffers t = tail.inputs(rows, N);
    mixer->tail_forward(r.out.data(), t.a, t.b, t.rows);
    t = tail.grads(rows, N);
    mixer->tail_backward(t.da, t.db, subset ? dout_sub.data() : dout_full.data(), t.a, t.b,
                         t.rows);
    tail.scatter_grads(rows, N);
    mixer->scan_backward(r.din.data(), s);
    r.grads = g;
    return r;
  };
  const Result full = run(false), sub = run(true);
  std::vector<float> full_at_rows(size_t(M) * D);
  for (int r = 0; r < M; ++r)
    std::copy_n(&full.out[size_t(idx[r]) * D], D, &full_at_rows[size_t(r) * D]);
  EXPECT_LT(compare(sub.out, full_at_rows).rel_rms, 1e-6);
  EXPECT_LT(compare(sub.din, full.din).rel_rms, 1e-6);
  EXPECT_LT(compare(sub.grads, full.grads).rel_rms, 1e-6);
}

TEST(MixerOutputRows, GlaSubsetMatchesAllRows) {
  ModelConfig c = tiny_gla(/*short_conv=*/true);
  c.gate_logit_normalizer = 1;
  check_output_rows_subset(c, 41);
}

TEST(MixerOutputRows, Mamba2SubsetMatchesAllRows) {
  check_output_rows_subset(tiny_mamba2(/*G=*/2, /*N=*/7, /*P=*/5), 42);
}

TEST(ModelGrad, Mamba2TwoGroupsOddStateDim) {
  ModelConfig c = tiny_mamba2(/*G=*/2, /*N=*/7, /*P=*/5);  // 8 heads of 5, N = 7
  run_whole_model_fd(c, "mamba2 G=2 N=7 P=5", 14);
}

// The chunked scans are exact reformulations of the recurrence: loss and every gradient must
// agree across chunk sizes (4: 6 chunks of which the last is partial; 16: 2 chunks; 64: one
// chunk longer than T) up to fp32 reassociation.
void check_chunk_invariance(const ModelConfig& cfg, const std::string& what) {
  const int T = 21;
  MqarBatch b = random_batch(3, T, cfg.vocab_size, 5);
  std::vector<float> p;
  {
    ModelRig r(cfg, b, 4, 3);
    p = r.model->get_params();
  }
  perturb_params(p, 9);
  liven_gates(build_param_table(cfg), p, 10);
  std::vector<double> losses;
  std::vector<std::vector<float>> grads;
  for (int chunk : {4, 16, 64}) {
    ModelRig r(cfg, b, chunk, 3, &p);
    std::vector<float> g;
    losses.push_back(r.loss_and_grads(g));
    grads.push_back(g);
  }
  double gmax = 0;
  for (float x : grads[0]) gmax = std::max(gmax, double(std::fabs(x)));
  ASSERT_GT(gmax, 0.0);
  for (size_t i = 1; i < losses.size(); ++i) {
    // Loss ~3.6; fp32 reassociation over a few hundred terms: 1e-5 relative.
    EXPECT_NEAR(losses[i], losses[0], 1e-5 * std::fabs(losses[0])) << what << " chunk #" << i;
    Diff d = compare(grads[i], grads[0]);
    EXPECT_LT(d.max_abs, 1e-4 * gmax) << what << " chunk #" << i << ": worst gradient element "
                                      << d.worst << " (" << grads[i][d.worst] << " vs "
                                      << grads[0][d.worst] << ")";
    EXPECT_LT(d.rel_rms, 1e-5) << what << " chunk #" << i;
  }
}

TEST(ModelChunks, GlaLossAndGradsIndependentOfChunk) {
  check_chunk_invariance(tiny_gla(true), "gla");
}

TEST(ModelChunks, Mamba2LossAndGradsIndependentOfChunk) {
  check_chunk_invariance(tiny_mamba2(2, 7, 5), "mamba2");
}

// ---- state size ----

TEST(StateSize, GlaMatchesHandCount) {
  ModelConfig c = tiny_gla(true);  // D = 20: Dk = 10, Dv = 20, H = 2 -> K = 5, Vh = 10
  c.n_layers = 3;
  StateSize s = compute_state_size(c);
  ASSERT_EQ(s.layer_state_scalars.size(), 3u);
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(s.layer_state_scalars[l], 2 * 5 * 10);          // H * K * Vh
    EXPECT_EQ(s.layer_conv_state_scalars[l], 3 * (10 + 10 + 20));  // (W-1)(Dk + Dk + Dv)
  }
  EXPECT_EQ(s.total_state_scalars(), 300);
  c.heads = 5;  // K = 2, Vh = 4
  EXPECT_EQ(compute_state_size(c).layer_state_scalars[0], 5 * 2 * 4);
  c.use_short_conv = false;
  EXPECT_EQ(compute_state_size(c).total_conv_state_scalars(), 0);
  c.heads = 1;
  c.d_model = 24;  // Dk = 12, Dv = 24
  EXPECT_EQ(compute_state_size(c).layer_state_scalars[1], 12 * 24);
  // The model reports the same.
  ModelRig rig(tiny_gla(true), random_batch(1, 4, 37, 1), 4);
  EXPECT_EQ(rig.model->state_size().total_state_scalars(), 200);
}

TEST(StateSize, Mamba2MatchesHandCount) {
  ModelConfig c = tiny_mamba2(1, 8, 8);  // d_inner 40, 5 heads of P = 8, N = 8
  StateSize s = compute_state_size(c);
  EXPECT_EQ(s.layer_state_scalars[0], 5 * 8 * 8);        // Hm * P * N = d_inner * N
  EXPECT_EQ(s.layer_conv_state_scalars[0], 3 * (40 + 2 * 8));  // (W-1) * conv_dim
  EXPECT_EQ(s.total_state_scalars(), 2 * 320);
  ModelConfig g = tiny_mamba2(2, 7, 5);  // 8 heads of 5, G = 2, N = 7
  StateSize t = compute_state_size(g);
  EXPECT_EQ(t.layer_state_scalars[1], 8 * 5 * 7);
  EXPECT_EQ(t.layer_conv_state_scalars[1], 3 * (40 + 2 * 2 * 7));
}

// ---- parameter table ----

std::vector<int64_t> shape_of(const ParamTable& t, const std::string& name) {
  EXPECT_TRUE(t.contains(name)) << "missing " << name;
  return t.contains(name) ? t.at(name).shape : std::vector<int64_t>{};
}
using Shape = std::vector<int64_t>;

TEST(ParamTable, GlaNamesAndShapes) {
  ModelConfig c = tiny_gla(true);  // D 20, Dk 10, Dv 20, r 6, H 2
  c.mlp = true;
  c.mlp_hidden = 14;
  c.tie_embeddings = false;
  ParamTable t = build_param_table(c);
  EXPECT_EQ(shape_of(t, "model.embeddings.weight"), (Shape{37, 20}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn_norm.weight"), (Shape{20}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn.q_proj.weight"), (Shape{10, 20}));
  EXPECT_EQ(shape_of(t, "model.layers.1.attn.v_proj.weight"), (Shape{20, 20}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn.gk_proj.0.weight"), (Shape{6, 20}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn.gk_proj.1.weight"), (Shape{10, 6}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn.gk_proj.1.bias"), (Shape{10}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn.o_proj.weight"), (Shape{20, 20}));
  EXPECT_EQ(shape_of(t, "model.layers.0.attn.g_norm.weight"), (Shape{10}));  // Vh
  EXPECT_EQ(shape_of(t, "model.layers.1.attn.k_conv1d.weight"), (Shape{10, 1, 4}));
  EXPECT_EQ(shape_of(t, "model.layers.1.mlp.down_proj.weight"), (Shape{20, 14}));
  EXPECT_EQ(shape_of(t, "model.layers.1.mlp_norm.weight"), (Shape{20}));
  EXPECT_EQ(shape_of(t, "model.norm.weight"), (Shape{20}));
  EXPECT_EQ(shape_of(t, "lm_head.weight"), (Shape{37, 20}));
  // Offsets tile the flat buffer exactly.
  int64_t off = 0;
  for (auto& e : t.entries()) {
    EXPECT_EQ(e.offset, off) << e.name;
    off += e.numel();
  }
  EXPECT_EQ(off, t.total());
  c.tie_embeddings = true;
  c.use_short_conv = false;
  ParamTable tied = build_param_table(c);
  EXPECT_FALSE(tied.contains("lm_head.weight"));
  EXPECT_FALSE(tied.contains("model.layers.0.attn.q_conv1d.weight"));
}

TEST(ParamTable, Mamba2NamesAndShapes) {
  ModelConfig c = tiny_mamba2(2, 7, 5);  // D 20, di 40, G 2, N 7, H 8
  ParamTable t = build_param_table(c);
  const int64_t di = 40, G = 2, N = 7, H = 8;
  EXPECT_EQ(shape_of(t, "backbone.embedding.weight"), (Shape{37, 20}));
  EXPECT_EQ(shape_of(t, "backbone.layers.0.norm.weight"), (Shape{20}));
  EXPECT_EQ(shape_of(t, "backbone.layers.1.mixer.in_proj.weight"),
            (Shape{2 * di + 2 * G * N + H, 20}));
  EXPECT_EQ(shape_of(t, "backbone.layers.1.mixer.conv1d.weight"), (Shape{di + 2 * G * N, 1, 4}));
  EXPECT_EQ(shape_of(t, "backbone.layers.1.mixer.conv1d.bias"), (Shape{di + 2 * G * N}));
  EXPECT_EQ(shape_of(t, "backbone.layers.0.mixer.dt_bias"), (Shape{H}));
  EXPECT_EQ(shape_of(t, "backbone.layers.0.mixer.A_log"), (Shape{H}));
  EXPECT_EQ(shape_of(t, "backbone.layers.0.mixer.D"), (Shape{H}));
  EXPECT_EQ(shape_of(t, "backbone.layers.0.mixer.norm.weight"), (Shape{di}));
  EXPECT_EQ(shape_of(t, "backbone.layers.0.mixer.out_proj.weight"), (Shape{20, di}));
  EXPECT_EQ(shape_of(t, "backbone.norm_f.weight"), (Shape{20}));
  EXPECT_FALSE(t.contains("lm_head.weight"));  // tied by default
}

TEST(ParamInit, Mamba2FollowsMambaSsm) {
  ModelConfig c = tiny_mamba2(1, 8, 8);
  ParamTable t = build_param_table(c);
  std::vector<float> p;
  init_params(c, t, 3, p);
  const ParamEntry& A = t.at("backbone.layers.0.mixer.A_log");
  for (int64_t i = 0; i < A.numel(); ++i) {
    double a = std::exp(p[A.offset + i]);
    EXPECT_GE(a, 1.0 - 1e-5);
    EXPECT_LE(a, 16.0 + 1e-4);
  }
  const ParamEntry& dtb = t.at("backbone.layers.0.mixer.dt_bias");
  for (int64_t i = 0; i < dtb.numel(); ++i) {
    double dt = std::log1p(std::exp(double(p[dtb.offset + i])));  // softplus
    EXPECT_GE(dt, 1e-4 * 0.999);
    EXPECT_LE(dt, 1e-1 * 1.001);
  }
  const ParamEntry& D = t.at("backbone.layers.1.mixer.D");
  for (int64_t i = 0; i < D.numel(); ++i) EXPECT_EQ(p[D.offset + i], 1.0f);
}

// ---- config validation ----

std::string config_error(const ModelConfig& c) {
  return error_of<ConfigError>([&] { validate(c); });
}

TEST(ModelConfigValidation, GlaHeadsMustDivideKeyAndValueDims) {
  ModelConfig c = tiny_gla();  // Dk 10, Dv 20
  c.heads = 3;
  EXPECT_CONTAINS(config_error(c), "model.heads");
  c.heads = 4;  // divides Dv = 20, not Dk = 10
  EXPECT_CONTAINS(config_error(c), "model.heads");
  c.heads = 5;
  c.expand_v = 0.6f;  // Dv = 12: 5 does not divide it
  EXPECT_CONTAINS(config_error(c), "model.heads");
}

TEST(ModelConfigValidation, Mamba2Shapes) {
  ModelConfig c = tiny_mamba2(1, 8, 8);
  c.head_dim = 7;  // d_inner 40
  EXPECT_CONTAINS(config_error(c), "model.head_dim");
  c = tiny_mamba2(3, 8, 8);  // 5 heads, 3 groups
  EXPECT_CONTAINS(config_error(c), "model.ngroups");
  c = tiny_mamba2(1, 0, 8);
  EXPECT_CONTAINS(config_error(c), "model.d_state");
  c = tiny_mamba2(1, -2, 8);
  EXPECT_CONTAINS(config_error(c), "model.d_state");
  c = tiny_mamba2(1, 8, 0);
  EXPECT_CONTAINS(config_error(c), "model.head_dim");
  c = tiny_mamba2(0, 8, 8);
  EXPECT_CONTAINS(config_error(c), "model.ngroups");
}

TEST(ModelConfigValidation, UnknownModelAndNonPositiveSizes) {
  ModelConfig c = tiny_gla();
  c.model = "transformer";
  EXPECT_CONTAINS(config_error(c), "model.model");
  EXPECT_CONTAINS(config_error(c), "transformer");
  struct Case {
    int ModelConfig::*field;
    int value;
    const char* option;
  };
  for (Case k : {Case{&ModelConfig::d_model, 0, "model.d_model"},
                 Case{&ModelConfig::d_model, -4, "model.d_model"},
                 Case{&ModelConfig::vocab_size, 0, "model.vocab_size"},
                 Case{&ModelConfig::n_layers, 0, "model.n_layers"},
                 Case{&ModelConfig::n_layers, -1, "model.n_layers"},
                 Case{&ModelConfig::heads, 0, "model.heads"},
                 Case{&ModelConfig::heads, -2, "model.heads"},
                 Case{&ModelConfig::gate_low_rank, 0, "model.gate_low_rank"},
                 Case{&ModelConfig::conv_width, 0, "model.conv_width"}}) {
    ModelConfig bad = tiny_gla();
    bad.*k.field = k.value;
    EXPECT_CONTAINS(config_error(bad), k.option);
  }
  ModelConfig m = tiny_mamba2();
  m.expand = 0;
  EXPECT_CONTAINS(config_error(m), "model.expand");
}

// Constructing a Model from a bad config must raise the same ConfigError (not crash): the CLI
// validates first, but library users (and checkpoint loaders) build models directly. Run in a
// child process so that a crash fails this test only.
void expect_model_ctor_config_error(const ModelConfig& c, const std::string& option) {
  EXPECT_EXIT(
      {
        auto be = make_cpu_backend();
        try {
          Model m(c, *be, 16, 4, 4);
        } catch (const ConfigError& e) {
          std::exit(std::string(e.what()).find(option) != std::string::npos ? 0 : 3);
        } catch (...) {
          std::exit(4);
        }
        std::exit(5);
      },
      ::testing::ExitedWithCode(0), "")
      << "Model(" << option << " bad) must throw ConfigError naming " << option;
}

TEST(ModelConfigValidation, ModelConstructorThrowsConfigErrorNotCrash) {
  ModelConfig c = tiny_gla();
  c.heads = 3;
  expect_model_ctor_config_error(c, "model.heads");
  c.heads = 0;
  expect_model_ctor_config_error(c, "model.heads");
  ModelConfig m = tiny_mamba2();
  m.head_dim = 0;
  expect_model_ctor_config_error(m, "model.head_dim");
}

}  // namespace
