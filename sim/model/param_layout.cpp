#include "sim/model/param_layout.h"

#include <cmath>
#include <random>

namespace statex {

ModelNames model_names(const ModelConfig& cfg) {
  if (cfg.model == "mamba2")
    return {"backbone.embedding.weight", "backbone.layers.", "mixer.", "norm.weight", "norm2.weight",
            "backbone.norm_f.weight"};
  return {"model.embeddings.weight", "model.layers.", "attn.", "attn_norm.weight",
          "mlp_norm.weight", "model.norm.weight"};
}

namespace {

struct Shaped {
  std::string name;
  std::vector<int64_t> shape;
};

std::vector<Shaped> mixer_params(const ModelConfig& c, int layer) {
  int64_t D = c.d_model, W = c.conv_width;
  MixerShape s = c.layer_shape(layer);
  if (c.model == "mamba2") {
    int64_t di = c.d_inner(), G = c.ngroups, N = s.d_state, H = di / c.head_dim;
    int64_t conv_dim = di + 2 * G * N;
    return {{"in_proj.weight", {2 * di + 2 * G * N + H, D}},
            {"conv1d.weight", {conv_dim, 1, W}},
            {"conv1d.bias", {conv_dim}},
            {"dt_bias", {H}},
            {"A_log", {H}},
            {"D", {H}},
            {"norm.weight", {di}},
            {"out_proj.weight", {D, di}}};
  }
  if (c.model == "attention") {  // fla Attention: q/k/v/o_proj without bias (+ GLA's short conv)
    std::vector<Shaped> p = {{"q_proj.weight", {D, D}},
                             {"k_proj.weight", {D, D}},
                             {"v_proj.weight", {D, D}},
                             {"o_proj.weight", {D, D}}};
    if (c.use_short_conv)
      for (const char* n : {"q_conv1d.weight", "k_conv1d.weight", "v_conv1d.weight"})
        p.push_back({n, {D, 1, W}});
    return p;
  }
  int64_t Dk = c.key_dim(), Dv = c.value_dim(), r = c.gate_low_rank, Vh = Dv / s.heads;
  std::vector<Shaped> p = {{"q_proj.weight", {Dk, D}},      {"k_proj.weight", {Dk, D}},
                           {"v_proj.weight", {Dv, D}},      {"g_proj.weight", {Dv, D}},
                           {"gk_proj.0.weight", {r, D}},    {"gk_proj.1.weight", {Dk, r}},
                           {"gk_proj.1.bias", {Dk}},        {"o_proj.weight", {D, Dv}},
                           {"g_norm.weight", {Vh}}};
  if (c.use_short_conv) {
    p.push_back({"q_conv1d.weight", {Dk, 1, W}});
    p.push_back({"k_conv1d.weight", {Dk, 1, W}});
    p.push_back({"v_conv1d.weight", {Dv, 1, W}});
  }
  return p;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t name_hash(const std::string& s) {  // FNV-1a, stable across platforms
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

}  // namespace

std::vector<std::string> mixer_param_names(const ModelConfig& cfg, int layer) {
  std::vector<std::string> n;
  for (auto& p : mixer_params(cfg, layer)) n.push_back(p.name);
  return n;
}

ParamTable build_param_table(const ModelConfig& c) {
  validate(c);  // shapes below divide by heads / head_dim
  ModelNames nm = model_names(c);
  int64_t D = c.d_model, F = c.hidden_mlp();
  ParamTable t;
  t.add(nm.embedding, {c.vocab_size, D});
  for (int l = 0; l < c.n_layers; ++l) {
    std::string L = nm.layer(l);
    t.add(L + nm.pre_norm, {D});
    for (auto& p : mixer_params(c, l)) t.add(L + nm.mixer + p.name, p.shape);
    if (c.mlp) {
      t.add(L + nm.mlp_norm, {D});
      t.add(L + "mlp.gate_proj.weight", {F, D});
      t.add(L + "mlp.up_proj.weight", {F, D});
      t.add(L + "mlp.down_proj.weight", {D, F});
    }
  }
  t.add(nm.final_norm, {D});
  if (!c.tie_embeddings) t.add("lm_head.weight", {c.vocab_size, D});
  return t;
}

void init_param(const ModelConfig& c, const ParamEntry& e, uint64_t seed, float* dst) {
  std::mt19937_64 rng(seed ^ name_hash(e.name));
  const int64_t n = e.numel();
  auto fill_uniform = [&](double lo, double hi) {
    std::uniform_real_distribution<double> u(lo, hi);
    for (int64_t i = 0; i < n; ++i) dst[i] = float(u(rng));
  };
  auto fill_normal = [&](double std) {
    std::normal_distribution<double> g(0.0, std);
    for (int64_t i = 0; i < n; ++i) dst[i] = float(g(rng));
  };
  auto fill = [&](double v) {
    for (int64_t i = 0; i < n; ++i) dst[i] = float(v);
  };
  const std::string& nm = e.name;
  const bool mamba = c.model == "mamba2";
  const int64_t fan_in = e.shape.size() >= 2 ? e.shape.back() : 1;

  if (ends_with(nm, "norm.weight") || ends_with(nm, "norm2.weight") ||
      ends_with(nm, "norm_f.weight")) {
    fill(1.0);  // every RMSNorm weight starts at one
  } else if (ends_with(nm, "embedding.weight") || ends_with(nm, "embeddings.weight") ||
             nm == "lm_head.weight" || nm.find(".mlp.") != std::string::npos) {
    fill_normal(0.02);  // initializer_range of fla and mamba_ssm
  } else if (ends_with(nm, ".bias") && !ends_with(nm, "conv1d.bias")) {
    fill(0.0);
  } else if (ends_with(nm, "conv1d.weight") || ends_with(nm, "conv1d.bias")) {
    // PyTorch Conv1d default (kaiming_uniform a=sqrt(5)): U(±1/sqrt(fan_in)), fan_in = W for a
    // depthwise conv.
    double b = 1.0 / std::sqrt(double(c.conv_width));
    fill_uniform(-b, b);
  } else if (mamba && ends_with(nm, "dt_bias")) {
    // dt ~ exp(U[log 1e-3, log 1e-1]) floored at 1e-4; dt_bias = softplus^-1(dt).
    std::uniform_real_distribution<double> u(std::log(1e-3), std::log(1e-1));
    for (int64_t i = 0; i < n; ++i) {
      double dt = std::max(std::exp(u(rng)), 1e-4);
      dst[i] = float(dt + std::log(-std::expm1(-dt)));
    }
  } else if (mamba && ends_with(nm, "A_log")) {
    std::uniform_real_distribution<double> u(1.0, 16.0);
    for (int64_t i = 0; i < n; ++i) dst[i] = float(std::log(u(rng)));
  } else if (mamba && ends_with(nm, ".D")) {
    fill(1.0);
  } else if (c.model == "attention") {
    fill_normal(0.02);  // fla Transformer _init_weights: every Linear ~ N(0, initializer_range)
  } else if (mamba) {
    // in_proj / out_proj: PyTorch Linear default U(±1/sqrt(in)); out_proj rescaled by
    // 1/sqrt(n_residuals_per_layer * n_layer) as mamba_ssm's rescale_prenorm_residual.
    double b = 1.0 / std::sqrt(double(fan_in));
    fill_uniform(-b, b);
    if (ends_with(nm, "out_proj.weight")) {
      double s = 1.0 / std::sqrt(double((c.mlp ? 2 : 1) * c.n_layers));
      for (int64_t i = 0; i < n; ++i) dst[i] *= float(s);
    }
  } else {
    // GLA mixer linears: fla's xavier_uniform with gain 2^-2.5.
    double fan_out = double(e.shape[0]);
    double b = std::pow(2.0, -2.5) * std::sqrt(6.0 / (double(fan_in) + fan_out));
    fill_uniform(-b, b);
  }
}

void init_params(const ModelConfig& c, const ParamTable& t, uint64_t seed,
                 std::vector<float>& params) {
  params.assign(t.total(), 0.f);
  for (auto& e : t.entries()) init_param(c, e, seed, params.data() + e.offset);
}

}  // namespace statex
