// The state-size conventions (sim/model/state_size.h, docs/design.md §1 "State accounting"),
// above all `zoology`: every expected number below is worked out by hand from Zoology's own
// state_size() methods (HazyResearch/zoology, mixers/{gla,mamba2,gated_delta_net,attention}.py;
// fla's ShortConvolution.state_size = hidden_size * kernel_size), not from our formulas.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/model/state_size.h"

namespace statex {
namespace {

ModelConfig gla(int D, int heads, int layers, bool conv) {
  ModelConfig c;
  c.model = "gla";
  c.d_model = D;
  c.heads = heads;
  c.n_layers = layers;
  c.use_short_conv = conv;
  validate(c);
  return c;
}

ModelConfig mamba2(int D, int d_state, int layers, int expand = 2, int head_dim = 16) {
  ModelConfig c;
  c.model = "mamba2";
  c.d_model = D;
  c.d_state = d_state;
  c.n_layers = layers;
  c.expand = expand;
  c.head_dim = head_dim;
  validate(c);
  return c;
}

ModelConfig gdn(int D, int heads, int layers, bool conv) {
  ModelConfig c = gla(D, heads, layers, conv);
  c.model = "gated_deltanet";
  validate(c);
  return c;
}

ModelConfig attention(int D, int heads, int layers, bool conv) {
  ModelConfig c = gla(D, heads, layers, conv);
  c.model = "attention";
  validate(c);
  return c;
}

int64_t zoology(const ModelConfig& c, int T = 0) {
  return total_state_scalars(compute_state_size(c, T), StateConvention::zoology);
}

// The finding of issue #29: the quickstart GLA (experiments/quickstart.ini: D 64, 2 heads, 2
// layers, short conv width 4). Zoology, per layer: key_dim * head_v_dim = 32 * 32 = 1,024, plus
// three ShortConvolutions of 4 x 32, 4 x 32 and 4 x 64 = 512; 1,536 a layer, 3,072 in all,
// which Zoology's model-level state_size() reports x 4 = 12,288 (bytes). recurrent+conv counts
// the conv as (4-1) x 128 = 384 a layer: 2,816 scalars, the 11,264 bytes we printed.
TEST(ZoologyStateSize, QuickstartGlaIs3072Scalars) {
  ModelConfig c = gla(64, 2, 2, true);
  StateSize s = compute_state_size(c);
  EXPECT_EQ(s.layer_zoology_state_scalars, (std::vector<int64_t>{1536, 1536}));
  EXPECT_EQ(total_state_scalars(s, StateConvention::zoology), 3072);
  EXPECT_EQ(4 * total_state_scalars(s, StateConvention::zoology), 12288);
  EXPECT_EQ(total_state_scalars(s, StateConvention::recurrent), 2048);
  EXPECT_EQ(total_state_scalars(s, StateConvention::recurrent_conv), 2816);
  EXPECT_EQ(4 * total_state_scalars(s, StateConvention::recurrent_conv), 11264);
}

TEST(ZoologyStateSize, GlaByHand) {
  // D 60, 3 heads: key_dim 30, value_dim 60, head_v_dim 20 -> 30 * 20 = 600; convs
  // 4 * (30 + 30 + 60) = 480.
  EXPECT_EQ(zoology(gla(60, 3, 3, true)), 3 * (600 + 480));
  EXPECT_EQ(zoology(gla(60, 3, 1, false)), 600);  // no ShortConvolution children: no conv term
  // expand_k 1, expand_v 2, 5 heads, conv width 3: key_dim 60, value_dim 120, head_v_dim 24 ->
  // 60 * 24 = 1,440; convs 3 * (60 + 60 + 120) = 720.
  ModelConfig c = gla(60, 5, 2, true);
  c.expand_k = 1, c.expand_v = 2, c.conv_width = 3;
  validate(c);
  EXPECT_EQ(zoology(c), 2 * (1440 + 720));
  // 1 head, D 16: 8 * 16 = 128; convs 4 * (8 + 8 + 16) = 128.
  EXPECT_EQ(zoology(gla(16, 1, 4, true)), 4 * 256);
  // Per-layer heads (after StateX): layer 0 keeps 2 heads (32 * 32), layer 1 has 1 (32 * 64).
  ModelConfig x = gla(64, 2, 2, true);
  x.layers = {MixerShape{2, 0}, MixerShape{1, 0}};
  validate(x);
  EXPECT_EQ(compute_state_size(x).layer_zoology_state_scalars,
            (std::vector<int64_t>{1024 + 512, 2048 + 512}));
}

TEST(ZoologyStateSize, Mamba2ByHand) {
  // Zoology: 2 * d_model * d_state per layer, no conv state, whatever expand / head_dim.
  EXPECT_EQ(zoology(mamba2(64, 16, 2)), 2 * 2048);
  EXPECT_EQ(zoology(mamba2(60, 8, 3, 2, 12)), 3 * 960);
  EXPECT_EQ(zoology(mamba2(64, 8, 1)), 1024);
  // expand 3: still 2 * 60 * 8 = 960 (the SSM state itself is d_inner N = 180 * 8 = 1,440).
  ModelConfig e = mamba2(60, 8, 2, 3, 12);
  EXPECT_EQ(zoology(e), 2 * 960);
  EXPECT_EQ(compute_state_size(e).total_state_scalars(), 2 * 1440);
  // ngroups changes our conv state, not Zoology's count.
  ModelConfig g = mamba2(64, 16, 2);
  g.ngroups = 2;
  validate(g);
  EXPECT_EQ(zoology(g), 2 * 2048);
  // Per-layer d_state (after StateX): 2 * 64 * 16 and 2 * 64 * 8.
  ModelConfig x = mamba2(64, 16, 2);
  x.layers = {MixerShape{8, 16}, MixerShape{8, 8}};
  validate(x);
  EXPECT_EQ(compute_state_size(x).layer_zoology_state_scalars,
            (std::vector<int64_t>{2048, 1024}));
}

TEST(ZoologyStateSize, GatedDeltaNetByHand) {
  // Zoology: num_heads * head_k_dim * head_v_dim; the short conv is not counted.
  // D 64, 2 heads, Dk 32, Dv 64: 2 * 16 * 32 = 1,024.
  EXPECT_EQ(zoology(gdn(64, 2, 2, true)), 2 * 1024);
  EXPECT_EQ(zoology(gdn(64, 2, 2, false)), 2 * 1024);
  // Zoology's own shape (key_dim = D, value_dim = 2 D): D 60, 3 heads -> 3 * 20 * 40 = 2,400.
  ModelConfig c = gdn(60, 3, 3, true);
  c.expand_k = 1, c.expand_v = 2;
  validate(c);
  EXPECT_EQ(zoology(c), 3 * 2400);
  // D 60, 3 heads, expand_k 0.5: head_k 10, head_v 20 -> 3 * 10 * 20 = 600.
  EXPECT_EQ(zoology(gdn(60, 3, 4, true)), 4 * 600);
  // Per-layer heads: 1 head of 32 x 64.
  ModelConfig x = gdn(64, 2, 2, true);
  x.layers = {MixerShape{2, 0}, MixerShape{1, 0}};
  validate(x);
  EXPECT_EQ(compute_state_size(x).layer_zoology_state_scalars,
            (std::vector<int64_t>{1024, 2048}));
}

TEST(ZoologyStateSize, AttentionByHand) {
  // Zoology MHA: 2 * d_model * T at the longest test length.
  EXPECT_EQ(zoology(attention(64, 2, 2, false), 64), 2 * 8192);
  // D 60, 3 heads, T 128: 15,360; our short conv (Zoology's MHA has none) as a
  // ShortConvolution of 3 D channels: 4 * 180 = 720.
  EXPECT_EQ(zoology(attention(60, 3, 3, true), 128), 3 * (15360 + 720));
  EXPECT_EQ(zoology(attention(60, 3, 3, false), 128), 3 * 15360);
  EXPECT_EQ(zoology(attention(16, 1, 1, false), 256), 8192);
  EXPECT_THROW(compute_state_size(attention(16, 1, 1, false)), std::invalid_argument);
  EXPECT_THROW(zoology_layer_state_scalars(attention(16, 1, 1, false), 0, 0),
               std::invalid_argument);
}

// Every family has a zoology count, and one per layer; a name we do not know has none.
TEST(ZoologyStateSize, EveryFamilyHasACount) {
  for (Family f : kFamilies) {
    ModelConfig c;
    c.model = family_name(f);
    c.n_layers = 3;
    ASSERT_NO_THROW(validate(c)) << c.model;
    EXPECT_EQ(family_of(c.model), f);
    StateSize s = compute_state_size(c, 64);
    EXPECT_EQ(s.layer_zoology_state_scalars.size(), 3u) << c.model;
    for (int64_t v : s.layer_zoology_state_scalars) EXPECT_GT(v, 0) << c.model;
  }
  EXPECT_THROW(family_of("rwkv7"), std::invalid_argument);
  ModelConfig c;
  c.model = "rwkv7";
  EXPECT_THROW(compute_state_size(c), std::invalid_argument);
  EXPECT_THROW(zoology_layer_state_scalars(c, 0, 64), std::invalid_argument);
}

TEST(StateConventions, NamesRoundTripAndBadNamesFail) {
  for (StateConvention c : kStateConventions)
    EXPECT_EQ(parse_state_convention(convention_name(c)), c);
  EXPECT_STREQ(convention_name(StateConvention::recurrent_conv), "recurrent+conv");
  EXPECT_STREQ(convention_name(StateConvention::zoology), "zoology");
  try {
    parse_state_convention("Zoology", "--state");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--state"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("zoology"), std::string::npos) << e.what();
  }
  // A StateSize read from a file written before the zoology count has none to give.
  StateSize old;
  old.layer_state_scalars = {10, 10};
  old.layer_conv_state_scalars = {3, 3};
  EXPECT_EQ(total_state_scalars(old, StateConvention::recurrent_conv), 26);
  EXPECT_THROW(total_state_scalars(old, StateConvention::zoology), std::runtime_error);
}

}  // namespace
}  // namespace statex
