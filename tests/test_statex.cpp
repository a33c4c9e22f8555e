// StateX (docs/design.md §3): layer selection, expanded configs, the parameter surgery of
// expand_model (bit-identical outside the selected mixers, kept / tiled / fresh rows), state
// growth, `fresh` flags, and that an expanded model is a correct, trainable model (whole-model
// FD gradients, a few AdamW steps).
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <set>

#include "sim/model/param_layout.h"
#include "sim/model/state_size.h"
#include "sim/statex/statex.h"
#include "sim/train/optimizer.h"
#include "tests/support/model_harness.h"
#include "tests/support/statex_harness.h"

using namespace statex;
using namespace statex::testing;

namespace {

// GLA, L = 4, D = 16: Dk = 8, Dv = 16, H = 4 (K = 2, Vh = 4): state 8*16/4 = 32 per layer.
ModelConfig gla4() {
  ModelConfig c = tiny_gla(true);
  c.d_model = 16;
  c.n_layers = 4;
  c.heads = 4;
  c.gate_low_rank = 4;
  return c;
}

// Mamba2, L = 2, D = 12: d_inner 24, P 6 -> 4 heads, G = 2, N = 3.
ModelConfig mamba2_g2() {
  ModelConfig c = tiny_mamba2(/*G=*/2, /*N=*/3, /*P=*/6);
  c.d_model = 12;
  return c;
}

// ---- layer selection ----

std::vector<int> sel(const std::string& select, int count, int L, const std::string& list = "") {
  StatexConfig s = sx_config("reinit", count, select);
  s.layers = list;
  return select_layers(s, L);
}

TEST(StatexSelect, EvenlyIsPaperRange) {
  EXPECT_EQ(sel("evenly", 2, 4), (std::vector<int>{0, 2}));
  EXPECT_EQ(sel("evenly", 3, 6), (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(sel("evenly", 1, 4), (std::vector<int>{0}));
  EXPECT_EQ(sel("evenly", 4, 4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(sel("evenly", 2, 8), (std::vector<int>{0, 4}));
  // L not a multiple of count: range(0, 5, 2) = 0, 2, 4 truncated to `count` (documented).
  EXPECT_EQ(sel("evenly", 2, 5), (std::vector<int>{0, 2}));
}

TEST(StatexSelect, FirstLastList) {
  EXPECT_EQ(sel("first", 2, 4), (std::vector<int>{0, 1}));
  EXPECT_EQ(sel("last", 2, 4), (std::vector<int>{2, 3}));
  EXPECT_EQ(sel("last", 1, 3), (std::vector<int>{2}));
  EXPECT_EQ(sel("list", 0, 4, "3,1"), (std::vector<int>{1, 3}));
  EXPECT_EQ(sel("list", 0, 4, "2"), (std::vector<int>{2}));
}

TEST(StatexSelect, BadSelectionsNameTheOption) {
  auto err = [](const std::string& select, int count, int L, const std::string& list = "") {
    return error_of<ConfigError>([&] { sel(select, count, L, list); });
  };
  EXPECT_CONTAINS(err("evenly", 5, 4), "statex.count");
  EXPECT_CONTAINS(err("evenly", 0, 4), "statex.count");
  EXPECT_CONTAINS(err("first", -1, 4), "statex.count");
  EXPECT_CONTAINS(err("last", 5, 4), "statex.count");
  EXPECT_CONTAINS(err("list", 1, 4, "0,4"), "statex.layers");
  EXPECT_CONTAINS(err("list", 1, 4, "-1"), "statex.layers");
  EXPECT_CONTAINS(err("list", 1, 4, "a"), "statex.layers");
  EXPECT_CONTAINS(err("list", 1, 4, "1,1"), "statex.layers");
  EXPECT_CONTAINS(err("list", 1, 4, ""), "statex.layers");
  EXPECT_CONTAINS(err("sideways", 1, 4), "statex.select");
}

TEST(StatexConfigCheck, BadExpansionOptionsNameTheOption) {
  ModelConfig g = gla4();  // Dk 8, Dv 16, H 4
  auto exp_err = [](const ModelConfig& m, const StatexConfig& s) {
    return error_of<ConfigError>([&] { expanded_config(m, s, select_layers(s, m.n_layers)); });
  };
  StatexConfig s = sx_config("reinit");
  s.gla_heads = 3;  // <= 4 but divides neither Dk = 8 nor Dv = 16
  EXPECT_CONTAINS(exp_err(g, s), "statex.gla_heads");
  s.gla_heads = 0;
  EXPECT_CONTAINS(exp_err(g, s), "statex.gla_heads");
  s.gla_heads = 8;  // more heads than the layer has: StateX merges heads
  EXPECT_CONTAINS(exp_err(g, s), "statex.gla_heads");
  s = sx_config("reinit");
  s.state_mult = 0;
  EXPECT_CONTAINS(exp_err(mamba2_g2(), s), "statex.state_mult");

  auto val_err = [](const StatexConfig& s, const ModelConfig& m, int64_t steps) {
    return error_of<ConfigError>([&] { validate(s, m, steps); });
  };
  s = sx_config("sideways");
  s.step = 2;
  EXPECT_CONTAINS(val_err(s, g, 10), "statex.mode");
  s = sx_config("reinit");
  s.arm = "bogus";
  EXPECT_CONTAINS(val_err(s, g, 10), "statex.arm");
  s = sx_config("reinit");
  s.step = 10;
  EXPECT_CONTAINS(val_err(s, g, 10), "statex.step");
  s.fraction = 0.5f;
  std::string both = val_err(s, g, 10);
  EXPECT_CONTAINS(both, "statex.step");
  EXPECT_CONTAINS(both, "statex.fraction");
  s = sx_config("reinit");
  s.arm = "statex";  // needs an expansion point
  EXPECT_CONTAINS(val_err(s, g, 10), "statex.step");
  s = sx_config("reinit", 9);
  s.step = 3;
  EXPECT_CONTAINS(val_err(s, g, 10), "statex.count");
  s = sx_config("reinit");
  s.step = 3;
  EXPECT_NO_THROW(validate(s, g, 10));
}

// A head count that does not divide the layer's heads cannot be mapped exactly (GLA: 6 -> 4
// would split heads across merged heads and tile the norm weight out of step); a state_mult
// whose d_state overflows the shapes is refused naming statex.state_mult (it used to wrap).
TEST(StatexConfigCheck, InexactMappingsRefused) {
  ModelConfig g = gla4();
  g.d_model = 24;  // Dk 12, Dv 24: divisible by 4 and 6
  g.heads = 6;
  validate(g);
  for (const char* mode : {"inherit", "reinit"}) {
    StatexConfig s = sx_config(mode);
    s.gla_heads = 4;
    const std::string e =
        error_of<ConfigError>([&] { expanded_config(g, s, select_layers(s, g.n_layers)); });
    EXPECT_CONTAINS(e, "statex.gla_heads = 4");
    EXPECT_CONTAINS(e, "1, 2, 3");
    s.step = 2;
    EXPECT_CONTAINS(error_of<ConfigError>([&] { plan_statex(s, g, 10); }), "statex.gla_heads");
  }
  StatexConfig m = sx_config("inherit");
  m.state_mult = 1 << 30;  // 3 x 2^30 does not fit an int
  const std::string e = error_of<ConfigError>(
      [&] { expanded_config(mamba2_g2(), m, select_layers(m, mamba2_g2().n_layers)); });
  EXPECT_CONTAINS(e, "statex.state_mult");
  m.state_mult = 5;  // N 3 -> 15: exact
  EXPECT_NO_THROW(expanded_config(mamba2_g2(), m, select_layers(m, mamba2_g2().n_layers)));
}

TEST(StatexConfigCheck, ExpansionStep) {
  StatexConfig s;
  EXPECT_EQ(expansion_step(s, 100), -1);
  s.step = 7;
  EXPECT_EQ(expansion_step(s, 100), 7);
  s.step = -1;
  s.fraction = 0.25f;
  EXPECT_EQ(expansion_step(s, 100), 25);
  s.fraction = 0.5f;
  EXPECT_EQ(expansion_step(s, 21), 11);  // llround(10.5)
}

// ---- state growth ----

TEST(StatexState, GlaGrowsByHeadRatio) {
  ModelConfig g = gla4();
  StatexConfig s = sx_config("reinit", 2);  // layers {0, 2}, 4 heads -> 1
  ModelConfig x = expanded_config(g, s, select_layers(s, g.n_layers));
  StateSize a = compute_state_size(g), b = compute_state_size(x);
  ASSERT_EQ(b.layer_state_scalars.size(), 4u);
  EXPECT_EQ(a.layer_state_scalars[0], 32);
  EXPECT_EQ(b.layer_state_scalars[0], 4 * 32);  // per expanded layer x H / H_new = 4
  EXPECT_EQ(b.layer_state_scalars[1], 32);
  EXPECT_EQ(b.layer_state_scalars[2], 4 * 32);
  EXPECT_EQ(b.layer_state_scalars[3], 32);
  EXPECT_DOUBLE_EQ(double(b.total_state_scalars()) / double(a.total_state_scalars()), 2.5);
  EXPECT_EQ(b.total_conv_state_scalars(), a.total_conv_state_scalars());
  EXPECT_EQ(x.layer_shape(0).heads, 1);
  EXPECT_EQ(x.layer_shape(1).heads, 4);
  // gla_heads = 2: x2 on the expanded layers.
  s.gla_heads = 2;
  ModelConfig y = expanded_config(g, s, select_layers(s, g.n_layers));
  EXPECT_EQ(compute_state_size(y).layer_state_scalars[2], 2 * 32);
}

TEST(StatexState, Mamba2GrowsByStateMult) {
  ModelConfig m = tiny_mamba2(1, 8, 8);  // d_inner 40, N = 8: 320 per layer
  StatexConfig s = sx_config("reinit", 1);  // layer 0 of 2, m = 4
  ModelConfig x = expanded_config(m, s, select_layers(s, m.n_layers));
  StateSize a = compute_state_size(m), b = compute_state_size(x);
  EXPECT_EQ(b.layer_state_scalars[0], 4 * 320);
  EXPECT_EQ(b.layer_state_scalars[1], 320);
  EXPECT_DOUBLE_EQ(double(b.total_state_scalars()) / double(a.total_state_scalars()), 2.5);
  EXPECT_EQ(x.layer_shape(0).d_state, 32);
  EXPECT_EQ(b.layer_conv_state_scalars[0], 3 * (40 + 2 * 32));  // B/C channels grow too
}

// ---- expand_model surgery ----

TEST(StatexExpand, GlaOutsideSelectedMixersBitIdentical) {
  for (const char* mode : {"reinit", "inherit"}) {
    SCOPED_TRACE(mode);
    Surgery r = expand(gla4(), sx_config(mode, 2));
    EXPECT_EQ(r.x.layers, (std::vector<int>{0, 2}));
    expect_outside_bit_identical(r, /*pre_norm_changes=*/std::string(mode) == "reinit");
  }
}

TEST(StatexExpand, Mamba2OutsideSelectedMixersBitIdentical) {
  for (const char* mode : {"reinit", "inherit"}) {
    SCOPED_TRACE(mode);
    Surgery r = expand(mamba2_g2(), sx_config(mode, 1, "last"));
    EXPECT_EQ(r.x.layers, (std::vector<int>{1}));
    expect_outside_bit_identical(r, /*pre_norm_changes=*/false);
    // The Mamba2 pre-norm is never touched.
    EXPECT_TRUE(bit_equal(ptr(r.x.params, r.x.table, "backbone.layers.1.norm.weight"),
                          ptr(r.params, r.table, "backbone.layers.1.norm.weight"), 12));
  }
}

TEST(StatexExpand, GlaShapesAndModes) {
  ModelConfig g = gla4();
  const std::string L0 = "model.layers.0.attn.", L2 = "model.layers.2.";
  // inherit: projections kept bit for bit, g_norm tiled to the new Vh = Dv = 16.
  Surgery in = expand(g, sx_config("inherit", 2));
  EXPECT_EQ(in.x.table.at(L0 + "g_norm.weight").shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(in.x.table.at("model.layers.1.attn.g_norm.weight").shape, (std::vector<int64_t>{4}));
  for (const char* n : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "g_proj.weight",
                        "gk_proj.0.weight", "gk_proj.1.weight", "gk_proj.1.bias", "o_proj.weight",
                        "q_conv1d.weight", "v_conv1d.weight"}) {
    const std::string name = L0 + n;
    EXPECT_EQ(in.x.table.at(name).shape, in.table.at(name).shape) << name;
    EXPECT_TRUE(bit_equal(ptr(in.x.params, in.x.table, name), ptr(in.params, in.table, name),
                          size_t(in.table.at(name).numel())))
        << name << " must be inherited";
  }
  const float* gn_old = ptr(in.params, in.table, L0 + "g_norm.weight");
  const float* gn_new = ptr(in.x.params, in.x.table, L0 + "g_norm.weight");
  for (int j = 0; j < 16; ++j) EXPECT_EQ(gn_new[j], gn_old[j % 4]) << "g_norm tile at " << j;
  EXPECT_TRUE(bit_equal(ptr(in.x.params, in.x.table, L2 + "attn_norm.weight"),
                        ptr(in.params, in.table, L2 + "attn_norm.weight"), 16));

  // reinit: fresh mixer (differs from the old one) and the pre-mixer norm back to ones.
  Surgery re = expand(g, sx_config("reinit", 2));
  const std::string q = L0 + "q_proj.weight";
  EXPECT_FALSE(bit_equal(ptr(re.x.params, re.x.table, q), ptr(re.params, re.table, q), 8 * 16));
  const float* norm = ptr(re.x.params, re.x.table, L2 + "attn_norm.weight");
  for (int j = 0; j < 16; ++j) EXPECT_EQ(norm[j], 1.0f);
  const float* gn = ptr(re.x.params, re.x.table, L0 + "g_norm.weight");
  for (int j = 0; j < 16; ++j) EXPECT_EQ(gn[j], 1.0f);
}

// Mamba2 in_proj rows [z (di) | x (di) | B (G N) | C (G N) | dt (H)], conv channels [x | B | C].
TEST(StatexExpand, Mamba2InheritKeepsZXDtAndTilesBC) {
  ModelConfig m = mamba2_g2();  // di 24, G 2, N 3 -> 12, H 4, D 12
  const int di = 24, G = 2, No = 3, Nn = 12, H = 4, D = 12, W = 4;
  Surgery r = expand(m, sx_config("inherit", 1));  // layer 0
  const std::string P = "backbone.layers.0.mixer.";
  ASSERT_EQ(r.x.table.at(P + "in_proj.weight").shape,
            (std::vector<int64_t>{2 * di + 2 * G * Nn + H, D}));
  ASSERT_EQ(r.x.table.at(P + "conv1d.weight").shape,
            (std::vector<int64_t>{di + 2 * G * Nn, 1, W}));
  const float* oi = ptr(r.params, r.table, P + "in_proj.weight");
  const float* ni = ptr(r.x.params, r.x.table, P + "in_proj.weight");
  auto row_eq = [&](const float* a, int ra, const float* b, int rb, int width) {
    return bit_equal(a + size_t(ra) * width, b + size_t(rb) * width, width);
  };
  for (int i = 0; i < 2 * di; ++i) EXPECT_TRUE(row_eq(ni, i, oi, i, D)) << "z/x row " << i;
  for (int h = 0; h < H; ++h)
    EXPECT_TRUE(row_eq(ni, 2 * di + 2 * G * Nn + h, oi, 2 * di + 2 * G * No + h, D)) << "dt " << h;
  for (int bc = 0; bc < 2; ++bc)
    for (int g = 0; g < G; ++g)
      for (int n = 0; n < Nn; ++n)
        EXPECT_TRUE(row_eq(ni, 2 * di + (bc * G + g) * Nn + n, oi,
                           2 * di + (bc * G + g) * No + n % No, D))
            << (bc ? "C" : "B") << " group " << g << " n " << n;
  for (const char* t : {"conv1d.weight", "conv1d.bias"}) {
    const int width = std::string(t) == "conv1d.weight" ? W : 1;
    const float* oc = ptr(r.params, r.table, P + t);
    const float* nc = ptr(r.x.params, r.x.table, P + t);
    for (int i = 0; i < di; ++i) EXPECT_TRUE(row_eq(nc, i, oc, i, width)) << t << " x ch " << i;
    for (int bc = 0; bc < 2; ++bc)
      for (int g = 0; g < G; ++g)
        for (int n = 0; n < Nn; ++n)
          EXPECT_TRUE(row_eq(nc, di + (bc * G + g) * Nn + n, oc, di + (bc * G + g) * No + n % No,
                             width))
              << t << " B/C channel " << bc << "," << g << "," << n;
  }
  for (const char* t : {"dt_bias", "A_log", "D", "norm.weight", "out_proj.weight"})
    EXPECT_TRUE(bit_equal(ptr(r.x.params, r.x.table, P + t), ptr(r.params, r.table, P + t),
                          size_t(r.table.at(P + t).numel())))
        << t << " must be inherited";
}

TEST(StatexExpand, Mamba2ReinitFreshBCAndResets) {
  ModelConfig m = mamba2_g2();
  const int di = 24, G = 2, No = 3, Nn = 12, H = 4, D = 12;
  Surgery r = expand(m, sx_config("reinit", 1));
  const std::string P = "backbone.layers.0.mixer.";
  const float* oi = ptr(r.params, r.table, P + "in_proj.weight");
  const float* ni = ptr(r.x.params, r.x.table, P + "in_proj.weight");
  EXPECT_TRUE(bit_equal(ni, oi, size_t(2 * di) * D)) << "z and x rows kept";
  EXPECT_TRUE(bit_equal(ni + size_t(2 * di + 2 * G * Nn) * D, oi + size_t(2 * di + 2 * G * No) * D,
                        size_t(H) * D))
      << "dt rows kept";
  // B rows are new: not the old rows (tiled or not).
  EXPECT_FALSE(bit_equal(ni + size_t(2 * di) * D, oi + size_t(2 * di) * D, size_t(No) * D));
  // A_log, dt_bias, norm reset to a fresh init (perturbed old values are not in init ranges
  // exactly; norm back to ones); D and out_proj kept.
  const float* nw = ptr(r.x.params, r.x.table, P + "norm.weight");
  for (int j = 0; j < di; ++j) EXPECT_EQ(nw[j], 1.0f);
  const float* a = ptr(r.x.params, r.x.table, P + "A_log");
  EXPECT_FALSE(bit_equal(a, ptr(r.params, r.table, P + "A_log"), H));
  for (int h = 0; h < H; ++h) EXPECT_TRUE(std::exp(a[h]) >= 1.0f - 1e-5f && std::exp(a[h]) <= 16.0f + 1e-4f);
  EXPECT_FALSE(bit_equal(ptr(r.x.params, r.x.table, P + "dt_bias"),
                         ptr(r.params, r.table, P + "dt_bias"), H));
  for (const char* t : {"D", "out_proj.weight"})
    EXPECT_TRUE(bit_equal(ptr(r.x.params, r.x.table, P + t), ptr(r.params, r.table, P + t),
                          size_t(r.table.at(P + t).numel())))
        << t;
}

// `fresh` marks exactly the new or reshaped tensors (their AdamW moments restart at zero).

TEST(StatexExpand, FreshFlagsMarkNewTensors) {
  {
    Surgery r = expand(gla4(), sx_config("reinit", 1, "last"));  // layer 3
    ASSERT_EQ(r.x.fresh.size(), r.x.table.entries().size());
    std::set<std::string> want;
    for (auto& n : mixer_param_names(r.x.cfg, 3)) want.insert("model.layers.3.attn." + n);
    want.insert("model.layers.3.attn_norm.weight");
    EXPECT_EQ(fresh_names(r.x), want);
  }
  {
    Surgery r = expand(gla4(), sx_config("inherit", 1, "last"));
    EXPECT_EQ(fresh_names(r.x), (std::set<std::string>{"model.layers.3.attn.g_norm.weight"}));
  }
  {
    Surgery r = expand(mamba2_g2(), sx_config("inherit", 1));
    const std::string P = "backbone.layers.0.mixer.";
    EXPECT_EQ(fresh_names(r.x), (std::set<std::string>{P + "in_proj.weight", P + "conv1d.weight",
                                                       P + "conv1d.bias"}));
  }
  {
    Surgery r = expand(mamba2_g2(), sx_config("reinit", 1));
    const std::string P = "backbone.layers.0.mixer.";
    EXPECT_EQ(fresh_names(r.x),
              (std::set<std::string>{P + "in_proj.weight", P + "conv1d.weight", P + "conv1d.bias",
                                     P + "A_log", P + "dt_bias", P + "norm.weight"}));
  }
}

// AdamW carries the moments and step counts of the kept tensors over an expansion, matched by
// name; new / reshaped tensors (and every tensor with reset_all) start at zero.
TEST(StatexExpand, AdamWCarriesKeptMomentsOverAnExpansion) {
  auto be = make_cpu_backend();
  TrainConfig tc;
  for (bool reset_all : {false, true}) {
    Surgery r = expand(mamba2_g2(), sx_config("inherit", 1));
    AdamW old_adam(*be, r.table, tc);
    AdamWState old;
    old.exp_avg = init_for(r.cfg, 5);
    old.exp_avg_sq = init_for(r.cfg, 6);
    for (size_t i = 0; i < r.table.entries().size(); ++i) old.tensor_steps.push_back(10 + i);
    old_adam.load(old);
    AdamW adam(*be, r.x.table, tc);
    adam.carry_over(old_adam.state(), r.table, r.x.fresh, reset_all);
    const AdamWState got = adam.state();
    int kept = 0;
    for (size_t i = 0; i < r.x.table.entries().size(); ++i) {
      const ParamEntry& e = r.x.table.entries()[i];
      const ParamEntry& o = r.table.at(e.name);
      const bool keep = !r.x.fresh[i] && !reset_all;
      kept += keep;
      for (int64_t j = 0; j < e.numel(); ++j) {
        ASSERT_EQ(got.exp_avg[e.offset + j], keep ? old.exp_avg[o.offset + j] : 0.f) << e.name;
        ASSERT_EQ(got.exp_avg_sq[e.offset + j], keep ? old.exp_avg_sq[o.offset + j] : 0.f)
            << e.name;
      }
      EXPECT_EQ(got.tensor_steps[i], keep ? old.tensor_steps[&o - r.table.entries().data()] : 0)
          << e.name;
    }
    EXPECT_EQ(kept > 0, !reset_all);
  }
  // A state of another table is refused.
  AdamW adam(*be, build_param_table(gla4()), tc);
  EXPECT_THROW(adam.load(AdamWState{}), std::invalid_argument);
}

// The plan decides once what each arm does: the event step, whether it expands, the layers.
TEST(StatexPlanTest, ArmsDecideTheEvent) {
  const ModelConfig g = gla4();
  StatexConfig s = sx_config("reinit", 2);
  s.gla_heads = 1;
  StatexPlan off = plan_statex(s, g, 100);
  EXPECT_EQ(off.arm, StatexArm::unlabelled);
  EXPECT_EQ(off.event_step, -1);
  EXPECT_TRUE(off.layers.empty());
  EXPECT_TRUE(off.initial.layers.empty());

  s.step = 40;
  for (const char* arm : {"", "statex", "control", "scratch"}) {
    SCOPED_TRACE(arm);
    s.arm = arm;
    const StatexPlan p = plan_statex(s, g, 100);
    EXPECT_EQ(p.arm, parse_arm(arm));
    EXPECT_EQ(p.layers, (std::vector<int>{0, 2}));
    const bool scratch = p.arm == StatexArm::scratch, control = p.arm == StatexArm::control;
    EXPECT_EQ(p.event_step, scratch ? -1 : 40);
    EXPECT_EQ(p.event_expands, !scratch && !control);
    // Expanded layers have one head: from step 0 (scratch) or after the event.
    const ModelConfig& big = scratch ? p.initial : p.after_event;
    EXPECT_EQ(big.layer_shape(0).heads, control ? 4 : 1);
    EXPECT_EQ(big.layer_shape(1).heads, 4);
    if (!scratch) {
      EXPECT_EQ(p.initial.layer_shape(0).heads, 4);
    }
  }
  EXPECT_CONTAINS(error_of<ConfigError>([] { parse_arm("treatment"); }), "statex.arm");
}

// GLA inherit to the head count the layer already has changes nothing the model computes.
TEST(StatexExpand, GlaInheritWithOneHeadIsIdentityOnOutputs) {
  ModelConfig g = gla4();
  g.heads = 1;
  StatexConfig s = sx_config("inherit", 2);
  s.gla_heads = 1;
  Surgery r = expand(g, s);
  MqarBatch b = random_batch(2, 15, g.vocab_size, 4);
  ModelRig before(g, b, 4, 0, &r.params);
  ModelRig after(r.x.cfg, b, 4, 0, &r.x.params);
  double l0 = before.loss_at(r.params), l1 = after.loss_at(r.x.params);
  EXPECT_EQ(l0, l1);
  std::vector<float> a = before.logits(), c = after.logits();
  ASSERT_EQ(a.size(), c.size());
  EXPECT_TRUE(bit_equal(a.data(), c.data(), a.size())) << "logits differ after identity expansion";
}

// ---- the expanded model is a correct, trainable model ----

TEST(StatexExpand, ExpandedGlaTrainsAndHasCorrectGradients) {
  ModelConfig g = gla4();
  g.gate_logit_normalizer = 1;
  check_expanded_model(g, sx_config("reinit", 2), "gla reinit");
  check_expanded_model(g, sx_config("inherit", 1, "last"), "gla inherit");
}

TEST(StatexExpand, ExpandedMamba2TrainsAndHasCorrectGradients) {
  check_expanded_model(mamba2_g2(), sx_config("inherit", 1), "mamba2 inherit");
  check_expanded_model(mamba2_g2(), sx_config("reinit", 2), "mamba2 reinit");
}

}  // namespace
