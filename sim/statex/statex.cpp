#include "sim/statex/statex.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "sim/model/param_layout.h"
#include "sim/statex/gated_deltanet_expand.h"

namespace statex {

namespace {

void require(bool ok, const std::string& msg) {
  if (!ok) throw ConfigError(msg);
}

// Largest Mamba2 state dim after an expansion (the shapes are ints; far above any real model).
constexpr int64_t kMaxStateDim = 1 << 20;

// "1, 2, 3" (the divisors of n below n).
std::string divisors(int n) {
  std::string out;
  for (int d = 1; d < n; ++d)
    if (n % d == 0) out += (out.empty() ? "" : ", ") + std::to_string(d);
  return out.empty() ? "none below " + std::to_string(n) : out;
}

std::vector<int> parse_layer_list(const std::string& text, int L) {
  std::vector<int> v;
  std::stringstream ss(text);
  std::string item;
  std::set<int> seen;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int x = 0;
    try {
      x = std::stoi(item, &used);
    } catch (...) {
      used = 0;
    }
    require(used > 0 && used == item.size(),
            "statex.layers: '" + item + "' is not a layer index (expected e.g. \"0,2\")");
    require(x >= 0 && x < L, "statex.layers: layer " + std::to_string(x) +
                                 " is out of range; the model has layers 0.." +
                                 std::to_string(L - 1) + " (model.n_layers = " +
                                 std::to_string(L) + ")");
    require(seen.insert(x).second, "statex.layers: layer " + std::to_string(x) + " listed twice");
    v.push_back(x);
  }
  require(!v.empty(), "statex.layers: empty list (give e.g. \"0,2\" with statex.select = list)");
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

std::vector<int> select_layers(const StatexConfig& sx, int L) {
  if (sx.select == "list") return parse_layer_list(sx.layers, L);
  require(sx.count >= 1 && sx.count <= L,
          "statex.count = " + std::to_string(sx.count) + " must be between 1 and the number of " +
              "layers (model.n_layers = " + std::to_string(L) + ")");
  std::vector<int> v;
  if (sx.select == "evenly") {
    // The paper's choice: range(0, L, L / count), truncated to `count` layers when L is not a
    // multiple of count (range would otherwise yield one or more extra layers).
    int stride = L / sx.count;
    for (int l = 0; l < L && int(v.size()) < sx.count; l += stride) v.push_back(l);
  } else if (sx.select == "first") {
    for (int l = 0; l < sx.count; ++l) v.push_back(l);
  } else if (sx.select == "last") {
    for (int l = L - sx.count; l < L; ++l) v.push_back(l);
  } else {
    throw ConfigError("statex.select: unknown selection '" + sx.select +
                      "' (use evenly, first, last or list)");
  }
  return v;
}

namespace {
// Attention has no fixed-size state to expand (its KV cache already grows with T). `what`
// prefixes the message (the options that asked for StateX), or nothing.
void refuse_attention(const ModelConfig& m, const std::string& what) {
  require(m.model != "attention",
          (what.empty() ? "" : what + ": ") +
              "StateX does not apply to model.model = attention (its state is a KV cache that "
              "already grows with T); use model.model = gla, mamba2 or gated_deltanet, or drop "
              "the statex.* options");
}
}  // namespace

ModelConfig expanded_config(const ModelConfig& cfg, const StatexConfig& sx,
                            const std::vector<int>& layers) {
  refuse_attention(cfg, "");
  ModelConfig out = cfg;
  if (out.layers.empty()) out.layers.assign(cfg.n_layers, cfg.default_shape());
  for (int l : layers) {
    MixerShape& s = out.layers.at(l);
    if (cfg.model == "gla" || cfg.model == "gated_deltanet") {  // merge heads
      require(sx.gla_heads >= 1 && sx.gla_heads <= s.heads,
              "statex.gla_heads = " + std::to_string(sx.gla_heads) +
                  " must be between 1 and the layer's current heads (" + std::to_string(s.heads) +
                  "): StateX merges heads");
      // Merging maps r = H / H' whole old heads onto each new head; anything else would drop
      // or split heads (6 -> 4 kept heads 0-3 and silently dropped 4 and 5).
      require(s.heads % sx.gla_heads == 0,
              "statex.gla_heads = " + std::to_string(sx.gla_heads) + " cannot merge layer " +
                  std::to_string(l) + "'s " + std::to_string(s.heads) + " heads exactly: each " +
                  "merged head takes H / statex.gla_heads whole heads, and " +
                  std::to_string(s.heads) + " / " + std::to_string(sx.gla_heads) +
                  " is not an integer; choose a divisor of " + std::to_string(s.heads) + " (" +
                  divisors(s.heads) + ")");
      require(cfg.key_dim() % sx.gla_heads == 0 && cfg.value_dim() % sx.gla_heads == 0,
              "statex.gla_heads = " + std::to_string(sx.gla_heads) +
                  " does not divide Dk = " + std::to_string(cfg.key_dim()) + " and Dv = " +
                  std::to_string(cfg.value_dim()));
      s.heads = sx.gla_heads;
    } else {
      require(sx.state_mult >= 1, "statex.state_mult must be >= 1 (got " +
                                      std::to_string(sx.state_mult) + ")");
      // N grows to m N exactly (each new B / C row is one old row, tiled): the product must
      // fit the int the shapes use.
      const int64_t n = int64_t(s.d_state) * sx.state_mult;
      require(n <= kMaxStateDim,
              "statex.state_mult = " + std::to_string(sx.state_mult) + " makes layer " +
                  std::to_string(l) + "'s d_state " + std::to_string(s.d_state) + " x " +
                  std::to_string(sx.state_mult) + " = " + std::to_string(n) + ", above the " +
                  "largest state dim " + std::to_string(kMaxStateDim) + "; choose a smaller " +
                  "statex.state_mult");
      s.d_state = int(n);
    }
  }
  validate(out);
  return out;
}

int64_t expansion_step(const StatexConfig& sx, int64_t total_steps) {
  require(!(sx.step >= 0 && sx.fraction >= 0),
          "statex.step and statex.fraction are both set; give only one");
  if (sx.step >= 0) return sx.step;
  if (sx.fraction >= 0) return int64_t(std::llround(double(sx.fraction) * double(total_steps)));
  return -1;
}

StatexArm parse_arm(const std::string& label) {
  if (label.empty()) return StatexArm::unlabelled;
  if (label == "statex") return StatexArm::statex;
  if (label == "control") return StatexArm::control;
  if (label == "scratch") return StatexArm::scratch;
  throw ConfigError("statex.arm: unknown arm '" + label + "' (use statex, control or scratch)");
}

void validate(const StatexConfig& sx, const ModelConfig& m, int64_t total_steps) {
  if (m.model == "attention") {
    // Any statex.* option away from its default is a request StateX cannot serve here.
    const StatexConfig d;
    const bool untouched = sx.step == d.step && sx.fraction == d.fraction &&
                           sx.count == d.count && sx.select == d.select &&
                           sx.layers == d.layers && sx.mode == d.mode &&
                           sx.gla_heads == d.gla_heads && sx.state_mult == d.state_mult &&
                           sx.reset_optimizer == d.reset_optimizer &&
                           sx.warmup_steps == d.warmup_steps && sx.arm == d.arm;
    if (!untouched) refuse_attention(m, "statex.*");
    return;
  }
  require(sx.mode == "reinit" || sx.mode == "inherit",
          "statex.mode: unknown mode '" + sx.mode + "' (use reinit or inherit)");
  const StatexArm arm = parse_arm(sx.arm);
  require(sx.fraction < 0 || sx.fraction <= 1, "statex.fraction must be in [0, 1]");
  require(sx.warmup_steps >= 0, "statex.warmup_steps must be >= 0");
  int64_t at = expansion_step(sx, total_steps);
  require(at < total_steps, "statex.step = " + std::to_string(at) +
                                " must be below train.steps = " + std::to_string(total_steps));
  const bool needs_step = arm == StatexArm::statex || arm == StatexArm::control;
  require(!needs_step || at >= 0,
          "statex.arm = " + sx.arm + " needs an expansion point: set statex.step or statex.fraction");
  if (at >= 0 || arm == StatexArm::scratch) expanded_config(m, sx, select_layers(sx, m.n_layers));
}

StatexPlan plan_statex(const StatexConfig& sx, const ModelConfig& m, int64_t total_steps) {
  validate(sx, m, total_steps);
  StatexPlan p;
  p.arm = parse_arm(sx.arm);
  p.initial = p.after_event = m;
  const int64_t at = expansion_step(sx, total_steps);
  if (at < 0 && p.arm != StatexArm::scratch) return p;  // StateX off
  p.layers = select_layers(sx, m.n_layers);
  const ModelConfig expanded = expanded_config(m, sx, p.layers);
  if (p.arm == StatexArm::scratch) {
    p.initial = expanded;  // the expanded architecture from step 0, no event
    return p;
  }
  p.event_step = at;
  p.event_expands = p.arm != StatexArm::control;
  if (p.event_expands) p.after_event = expanded;
  return p;
}

Expansion expand_model(const ModelConfig& cfg, const ParamTable& table,
                       const std::vector<float>& params, const StatexConfig& sx, uint64_t seed) {
  refuse_attention(cfg, "");  // before the layer choice, whose errors would not apply
  return expand_model(cfg, table, params, sx, select_layers(sx, cfg.n_layers), seed);
}

Expansion expand_model(const ModelConfig& cfg, const ParamTable& table,
                       const std::vector<float>& params, const StatexConfig& sx,
                       const std::vector<int>& layers, uint64_t seed) {
  refuse_attention(cfg, "");
  Expansion x;
  x.layers = layers;
  x.cfg = expanded_config(cfg, sx, x.layers);
  // The surgery maps old heads / state rows exactly or not at all (expanded_config refuses the
  // rest; this guards callers that pass their own configs).
  for (int l : x.layers) {
    const MixerShape a = cfg.layer_shape(l), b = x.cfg.layer_shape(l);
    const bool exact = cfg.model == "mamba2" ? b.d_state % a.d_state == 0 && b.heads == a.heads
                                             : a.heads % b.heads == 0;
    require(exact, "StateX cannot map layer " + std::to_string(l) + " exactly (heads " +
                       std::to_string(a.heads) + " -> " + std::to_string(b.heads) +
                       ", d_state " + std::to_string(a.d_state) + " -> " +
                       std::to_string(b.d_state) + ")");
  }
  x.table = build_param_table(x.cfg);
  x.params.assign(x.table.total(), 0.f);
  x.fresh.assign(x.table.entries().size(), false);
  const bool reinit = sx.mode == "reinit";
  const ModelNames nm = model_names(cfg);
  const std::set<int> selected(x.layers.begin(), x.layers.end());

  auto old_ptr = [&](const std::string& name) { return params.data() + table.at(name).offset; };
  for (size_t i = 0; i < x.table.entries().size(); ++i) {
    const ParamEntry& e = x.table.entries()[i];
    float* dst = x.params.data() + e.offset;
    // Which layer (if any) does this tensor belong to, and is it part of its mixer?
    int layer = -1;
    std::string local;  // name relative to the mixer prefix
    bool is_pre_norm = false;
    for (int l : selected) {
      std::string mixer = nm.layer(l) + nm.mixer;
      if (e.name.rfind(mixer, 0) == 0) {
        layer = l;
        local = e.name.substr(mixer.size());
      } else if (e.name == nm.layer(l) + nm.pre_norm) {
        layer = l;
        is_pre_norm = true;
      }
    }
    auto copy_old = [&] {
      const ParamEntry& o = table.at(e.name);
      if (o.shape != e.shape) throw std::logic_error("StateX: unexpected reshape of " + e.name);
      std::copy_n(old_ptr(e.name), e.numel(), dst);
    };
    auto fresh_init = [&] {
      init_param(x.cfg, e, seed, dst);
      x.fresh[i] = true;
    };

    if (layer < 0) {
      copy_old();  // outside the selected mixers: bit for bit
    } else if (is_pre_norm) {
      // GLA reinit resets the block's pre-mixer norm (the paper); otherwise it is kept.
      if (reinit && cfg.model != "mamba2") fresh_init(); else copy_old();
    } else if (cfg.model == "gated_deltanet") {
      if (reinit) {
        fresh_init();
      } else {
        x.fresh[i] = inherit_gated_deltanet_tensor(local, e, table.at(e.name), old_ptr(e.name), dst,
                                                   cfg.layer_shape(layer).heads,
                                                   x.cfg.layer_shape(layer).heads);
      }
    } else if (cfg.model == "gla") {
      if (reinit) {
        fresh_init();
      } else if (local == "g_norm.weight") {
        // Tile the per-head norm weight to the new (larger) head dim.
        const ParamEntry& o = table.at(e.name);
        const float* src = old_ptr(e.name);
        for (int64_t j = 0; j < e.numel(); ++j) dst[j] = src[j % o.numel()];
        x.fresh[i] = true;
      } else {
        copy_old();
      }
    } else {
      // Mamba2: in_proj rows [z | x | B | C | dt] and conv channels [x | B | C].
      const int di = cfg.d_inner(), G = cfg.ngroups;
      const int N_old = cfg.layer_shape(layer).d_state, N_new = x.cfg.layer_shape(layer).d_state;
      const bool rows_in_proj = local == "in_proj.weight";
      const bool conv = local == "conv1d.weight" || local == "conv1d.bias";
      if (rows_in_proj || conv) {
        const float* src = old_ptr(e.name);
        const int64_t row = e.numel() / e.shape[0];  // floats per row / channel
        const int lead = rows_in_proj ? di : 0;      // rows before x (z block)
        // Start from a fresh init (used by reinit for the new B/C rows), then overwrite the kept
        // rows: z, x (and dt) from the old tensor; B/C tiled from the old ones under inherit.
        init_param(x.cfg, e, seed, dst);
        x.fresh[i] = true;  // reshaped: AdamW moments restart
        auto copy_rows = [&](int64_t dst_row, int64_t src_row, int64_t n) {
          std::copy_n(src + src_row * row, n * row, dst + dst_row * row);
        };
        copy_rows(0, 0, lead + di);  // z and x rows / x channels
        const int64_t bc_old = lead + di, bc_new = lead + di;
        if (rows_in_proj) {
          const int64_t H = cfg.d_inner() / cfg.head_dim;
          copy_rows(bc_new + 2 * G * N_new, bc_old + 2 * G * N_old, H);  // dt rows
        }
        if (!reinit) {
          for (int bc = 0; bc < 2; ++bc)
            for (int g = 0; g < G; ++g)
              for (int n = 0; n < N_new; ++n)
                copy_rows(bc_new + (int64_t(bc) * G + g) * N_new + n,
                          bc_old + (int64_t(bc) * G + g) * N_old + (n % N_old), 1);
        }
      } else if (reinit && (local == "A_log" || local == "dt_bias" || local == "norm.weight")) {
        fresh_init();
      } else {
        copy_old();
      }
    }
  }
  return x;
}

}  // namespace statex
