#include "sim/core/config.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "sim/core/options.h"

namespace statex {

namespace {
void require(bool ok, const std::string& msg) {
  if (!ok) throw ConfigError(msg);
}
std::string str(double v) { return format_float(v); }

// The smallest float ratio r with truncated_dim(r, d) == dim and no fractional part left (what
// `ratio` should be written as to get `dim`); 0 when none is found nearby.
float ratio_for(int dim, int d) {
  float r = float(double(dim) / double(d));
  for (int i = 0; i < 64; ++i, r = std::nextafter(r, 2.0f * r + 1.0f)) {
    const float p = r * d;  // the product truncated_dim takes
    if (truncated_dim(r, d) == dim && p - float(dim) < 1e-6f * float(dim)) return r;
  }
  return 0.0f;
}

// model.expand_k / expand_v: the dimension the model is BUILT with is truncated_dim (the float
// product, truncated: ModelConfig::key_dim / value_dim, and the Python package's key_dim), so
// that is what is checked. A product just below an integer (0.3333333 x 48 = 15.999999) used
// to pass a rounding check as Dk = 16 and then build Dk = 15.
void check_head_dim_ratio(const char* option, float ratio, int d, const char* dim_name) {
  require(std::isfinite(ratio) && ratio > 0,
          std::string(option) + " must be a finite number > 0 (got " + str(ratio) + ")");
  const float p = ratio * d;
  const int built = truncated_dim(ratio, d);
  const double frac = double(p) - double(built);
  if (built >= 1 && frac < 1e-6 * std::max(1.0, double(built))) return;
  const int want = std::max(1, int(std::lround(double(p))));
  std::string fix;
  for (int t : {want, built})
    if (t >= 1)
      if (float r = ratio_for(t, d); r > 0)
        fix += std::string(fix.empty() ? "" : ", or ") + option + " = " + str(r) + " for " +
               dim_name + " = " + std::to_string(t);
  throw ConfigError(std::string(option) + " * model.d_model = " + str(ratio) + " x " +
                    std::to_string(d) + " = " + str(p) + " is not a positive integer: the " +
                    "model would be built with " + dim_name + " = " + std::to_string(built) +
                    " (the float product, truncated)" + (fix.empty() ? "" : "; give " + fix));
}
}  // namespace

MixerShape ModelConfig::default_shape() const {
  MixerShape s;
  if (model == "mamba2") {
    s.heads = head_dim > 0 ? d_inner() / head_dim : 0;
    s.d_state = d_state;
  } else {
    s.heads = heads;
    s.d_state = 0;
  }
  return s;
}

MixerShape ModelConfig::layer_shape(int layer) const {
  return layers.empty() ? default_shape() : layers.at(layer);
}

void validate(const ModelConfig& m) {
  require(m.model == "gla" || m.model == "mamba2" || m.model == "attention" ||
              m.model == "gated_deltanet",
          "model.model: unknown model '" + m.model +
              "' (use gla, mamba2, attention or gated_deltanet)");
  require(m.vocab_size > 0, "model.vocab_size must be > 0 (got " + std::to_string(m.vocab_size) + ")");
  require(m.d_model > 0, "model.d_model must be > 0 (got " + std::to_string(m.d_model) + ")");
  require(m.n_layers > 0, "model.n_layers must be > 0 (got " + std::to_string(m.n_layers) + ")");
  require(m.mlp_hidden >= 0, "model.mlp_hidden must be >= 0 (0 = default 8D/3)");
  require(m.norm_eps > 0 && std::isfinite(m.norm_eps),
          "model.norm_eps must be a finite number > 0 (got " + str(m.norm_eps) + ")");
  require(std::isfinite(m.expand_k) && std::isfinite(m.expand_v),
          "model.expand_k and model.expand_v must be finite");
  require(m.conv_width >= 1, "model.conv_width must be >= 1");
  require(m.layers.empty() || int(m.layers.size()) == m.n_layers,
          "per-layer shapes: expected " + std::to_string(m.n_layers) + " entries");
  if (m.model == "attention") {
    require(m.heads > 0 && m.d_model % m.heads == 0,
            "model.heads = " + std::to_string(m.heads) + " does not divide model.d_model = " +
                std::to_string(m.d_model) + " (attention heads are D / heads wide)");
    require(!m.rope || (m.d_model / m.heads) % 2 == 0,
            "model.rope needs an even head dim (model.d_model / model.heads = " +
                std::to_string(m.d_model / m.heads) + "); change model.heads or set model.rope = false");
    require(m.rope_theta > 0, "model.rope_theta must be > 0");
    require(m.layers.empty(), "attention has no per-layer mixer shapes (StateX does not apply)");
  } else if (m.model == "gla" || m.model == "gated_deltanet") {  // both: H heads over Dk and Dv
    require(m.heads > 0, "model.heads must be > 0 (got " + std::to_string(m.heads) + ")");
    check_head_dim_ratio("model.expand_k", m.expand_k, m.d_model, "Dk");
    check_head_dim_ratio("model.expand_v", m.expand_v, m.d_model, "Dv");
    require(m.gate_low_rank > 0, "model.gate_low_rank must be > 0");
    require(m.gate_logit_normalizer > 0 && std::isfinite(m.gate_logit_normalizer),
            "model.gate_logit_normalizer must be a finite number > 0");
    for (int l = 0; l < m.n_layers; ++l) {
      int h = m.layer_shape(l).heads;
      std::string who = m.layers.empty() ? "model.heads" : "layer " + std::to_string(l) + " heads";
      require(h > 0 && m.key_dim() % h == 0,
              who + " = " + std::to_string(h) + " does not divide the key dim Dk = " +
                  std::to_string(m.key_dim()) + " (model.expand_k * model.d_model); choose heads " +
                  "that divide both Dk and Dv");
      require(m.value_dim() % h == 0,
              who + " = " + std::to_string(h) + " does not divide the value dim Dv = " +
                  std::to_string(m.value_dim()) + " (model.expand_v * model.d_model)");
    }
  } else {
    require(m.expand > 0, "model.expand must be > 0");
    require(m.head_dim > 0, "model.head_dim must be > 0 (got " + std::to_string(m.head_dim) + ")");
    require(m.d_inner() % m.head_dim == 0,
            "model.head_dim = " + std::to_string(m.head_dim) + " does not divide d_inner = " +
                std::to_string(m.d_inner()) + " (model.expand * model.d_model)");
    require(m.ngroups > 0, "model.ngroups must be > 0");
    int nheads = m.d_inner() / m.head_dim;
    require(nheads % m.ngroups == 0,
            "model.ngroups = " + std::to_string(m.ngroups) + " does not divide the " +
                std::to_string(nheads) + " heads (d_inner / model.head_dim)");
    for (int l = 0; l < m.n_layers; ++l) {
      int n = m.layer_shape(l).d_state;
      require(n >= 1, (m.layers.empty() ? std::string("model.d_state")
                                        : "layer " + std::to_string(l) + " d_state") +
                          " must be >= 1 (got " + std::to_string(n) + ")");
    }
  }
}

void validate(const StatexConfig& s) {
  require(s.step >= -1, "statex.step must be -1 (off) or a step >= 0 (got " +
                            std::to_string(s.step) + ")");
  require(std::isfinite(s.fraction) && (s.fraction == -1.0f || (s.fraction >= 0 && s.fraction < 1)),
          "statex.fraction must be -1 (off) or in [0, 1) (got " + str(s.fraction) +
              "; at 1 the expansion would come after the last step)");
  require(s.count >= 1, "statex.count must be >= 1 (got " + std::to_string(s.count) + ")");
  require(s.gla_heads >= 1, "statex.gla_heads must be >= 1 (got " + std::to_string(s.gla_heads) + ")");
  require(s.state_mult >= 1,
          "statex.state_mult must be >= 1 (got " + std::to_string(s.state_mult) + ")");
  require(s.warmup_steps >= 0, "statex.warmup_steps must be >= 0");
}

void validate(const TrainConfig& t) {
  require(t.steps > 0, "train.steps must be > 0 (got " + std::to_string(t.steps) + ")");
  require(t.batch_size > 0, "train.batch_size must be > 0 (got " + std::to_string(t.batch_size) + ")");
  require(t.lr > 0 && std::isfinite(t.lr), "train.lr must be a finite number > 0");
  require(t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1, "train.min_lr_ratio must be in [0, 1]");
  require(t.warmup_steps >= 0, "train.warmup_steps must be >= 0");
  require(t.beta1 >= 0 && t.beta1 < 1, "train.beta1 must be in [0, 1)");
  require(t.beta2 >= 0 && t.beta2 < 1, "train.beta2 must be in [0, 1)");
  require(t.adam_eps > 0 && std::isfinite(t.adam_eps),
          "train.adam_eps must be a finite number > 0 (got " + str(t.adam_eps) + ")");
  require(t.weight_decay >= 0 && std::isfinite(t.weight_decay),
          "train.weight_decay must be a finite number >= 0");
  require(t.grad_clip >= 0 && std::isfinite(t.grad_clip),
          "train.grad_clip must be a finite number >= 0 (0 = off)");
  require(t.eval_every > 0, "train.eval_every must be > 0 (got " + std::to_string(t.eval_every) + ")");
  require(t.target_accuracy >= 0 && t.target_accuracy <= 1, "train.target_accuracy must be in [0, 1]");
  require(t.threads >= 0, "train.threads must be >= 0 (0 = OpenMP default)");
  require(t.gla_chunk > 0, "train.gla_chunk must be > 0");
  require(t.ssd_chunk > 0, "train.ssd_chunk must be > 0");
  require(t.checkpoint_every >= 0, "train.checkpoint_every must be >= 0");
  require(t.device == "cpu" || t.device == "cuda",
          "device: unknown device '" + t.device + "' (use cpu or cuda)");
}

std::map<std::string, std::string> to_map(const ModelConfig& m) {
  ExperimentConfig c;
  c.model = m;
  std::map<std::string, std::string> out;
  for (auto& [k, v] : OptionRegistry(c).values())
    if (k.rfind("model.", 0) == 0) out[k] = v;
  return out;
}

ModelConfig model_config_from_map(const std::map<std::string, std::string>& kv) {
  ExperimentConfig c;
  OptionRegistry reg(c);
  std::vector<std::string> args;
  for (auto& [k, v] : kv)
    if (k.rfind("model.", 0) == 0) args.push_back("--" + k + "=" + v);
  namespace po = boost::program_options;
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(reg.description()).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(std::string("model config: ") + e.what());
  }
  return c.model;
}

}  // namespace statex
