// The attention language model on the CPU backend (docs/design.md §1 "Softmax attention"):
// finite-difference gradients of every parameter tensor at T = 63, D = 60, 3 heads (short conv
// and RoPE on; and both off with an MLP and an untied head), the KV-cache state accounting,
// parameter names, config validation, and the refusal of StateX.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "sim/model/model.h"
#include "sim/model/param_layout.h"
#include "sim/model/state_size.h"
#include "sim/statex/statex.h"
#include "tests/support/model_harness.h"

using namespace statex;
using namespace statex::testing;

namespace {

constexpr int kB = 2, kT = 63;

std::string config_error(const ModelConfig& c) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// q/k projections at init (N(0, 0.02)) give near-uniform attention, whose derivative with
// respect to them sits near the FD noise; scaled up, the softmax is sharp enough to check.
void sharpen_attention(const ParamTable& t, std::vector<float>& p, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  for (const ParamEntry& e : t.entries())
    if (e.name.find("attn.q_proj") != std::string::npos ||
        e.name.find("attn.k_proj") != std::string::npos)
      for (int64_t i = 0; i < e.numel(); ++i) p[e.offset + i] = u(rng);
}

void run_whole_model_fd(const ModelConfig& cfg, const std::string& what, unsigned seed) {
  MqarBatch b = random_batch(kB, kT, cfg.vocab_size, seed);
  ModelRig rig(cfg, b, /*chunk=*/16, seed);
  std::vector<float> p = rig.model->get_params();
  perturb_params(p, seed + 1);
  sharpen_attention(rig.model->table(), p, seed + 2);
  std::printf("%s (%lld params):\n", what.c_str(), (long long)rig.model->n_params());
  auto rows = whole_model_fd(rig, p);
  EXPECT_EQ(rows.size(), rig.model->table().entries().size());
  expect_all_tensors_ok(rows, what);
}

TEST(AttentionModelGrad, ShortConvAndRope) {
  run_whole_model_fd(tiny_attention(true, true), "attention+conv+rope", 21);
}

TEST(AttentionModelGrad, NoConvNoRopeWithMlpUntiedHead) {
  ModelConfig c = tiny_attention(false, false);
  c.mlp = true;
  c.mlp_hidden = 14;
  c.tie_embeddings = false;
  run_whole_model_fd(c, "attention+mlp+untied", 22);
}

TEST(AttentionStateSize, KvCacheAtTheEvaluatedLength) {
  ModelConfig c = tiny_attention();
  StateSize s = compute_state_size(c, 64);
  ASSERT_EQ(s.layer_state_scalars.size(), 2u);
  EXPECT_TRUE(s.is_kv_cache());
  EXPECT_EQ(s.kv_cache_len, 64);
  EXPECT_EQ(s.layer_state_scalars[0], 2 * 64 * 60);      // keys and values, D wide, T long
  EXPECT_EQ(s.layer_conv_state_scalars[0], 3 * 3 * 60);  // (W-1) * 3D
  EXPECT_EQ(compute_state_size(c, 128).total_state_scalars(), 2 * s.total_state_scalars());
  EXPECT_THROW(compute_state_size(c), std::invalid_argument);  // no length: no KV cache size
  EXPECT_FALSE(compute_state_size(tiny_gla(), 64).is_kv_cache());
}

TEST(AttentionParamTable, NamesAndShapesFollowFla) {
  ModelConfig c = tiny_attention(true, true);
  ParamTable t = build_param_table(c);
  const std::string L = "model.layers.1.attn.";
  for (const char* n : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"})
    EXPECT_EQ(t.at(L + n).shape, (std::vector<int64_t>{60, 60})) << n;
  EXPECT_EQ(t.at(L + "k_conv1d.weight").shape, (std::vector<int64_t>{60, 1, 4}));
  EXPECT_FALSE(t.contains(L + "g_norm.weight"));
  ModelConfig plain = tiny_attention(false, false);
  EXPECT_FALSE(build_param_table(plain).contains(L + "q_conv1d.weight"));
  // q, k, v projections adjacent in this order (the mixer's stacked projection needs it).
  EXPECT_EQ(t.at(L + "k_proj.weight").offset, t.at(L + "q_proj.weight").offset + 3600);
  EXPECT_EQ(t.at(L + "v_proj.weight").offset, t.at(L + "k_proj.weight").offset + 3600);
}

TEST(AttentionConfigValidation, HeadsAndRope) {
  ModelConfig c = tiny_attention();
  c.heads = 7;  // does not divide 60
  EXPECT_CONTAINS(config_error(c), "model.heads");
  c = tiny_attention(true, true);
  c.heads = 4;  // head dim 15: odd, RoPE rotates pairs
  EXPECT_CONTAINS(config_error(c), "model.rope");
  c.rope = false;
  EXPECT_EQ(config_error(c), "");
  c.model = "transformer";
  EXPECT_CONTAINS(config_error(c), "attention");  // the message lists the valid models
}

TEST(AttentionStatex, RefusedWithAClearError) {
  ModelConfig c = tiny_attention();
  StatexConfig sx;
  EXPECT_NO_THROW(validate(sx, c, 100));  // no statex.* option given: fine
  sx.step = 10;
  EXPECT_CONTAINS(error_of<ConfigError>([&] { validate(sx, c, 100); }), "model.model = attention");
  StatexConfig mode_only;
  mode_only.mode = "inherit";
  EXPECT_CONTAINS(error_of<ConfigError>([&] { validate(mode_only, c, 100); }), "statex.*");
  ParamTable t = build_param_table(c);
  std::vector<float> p(t.total(), 0.f);
  EXPECT_CONTAINS(error_of<ConfigError>([&] { expand_model(c, t, p, StatexConfig{}, 1); }),
                  "StateX does not apply");
}

}  // namespace
