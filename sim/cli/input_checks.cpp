// Cross-option input checks: see input_checks.h.
#include "sim/cli/input_checks.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "sim/core/memory_budget.h"
#include "sim/core/options.h"


namespace statex::cli {
void check_memory(const ModelConfig& m, int64_t tokens_per_batch, bool with_optimizer,
                  const std::string& batch_option) {
  // Rough upper estimate in doubles (no overflow for absurd sizes): counts of fp32 scalars.
  // Per-layer shapes (after a StateX expansion) count at their largest.
  const double D = m.d_model, V = m.vocab_size, L = m.n_layers, n = double(tokens_per_batch);
  const double F = m.mlp ? double(m.hidden_mlp()) : 0.0;
  int min_heads = std::max(1, m.heads), max_d_state = m.d_state;
  for (int l = 0; l < int(m.layers.size()); ++l) {
    min_heads = std::max(1, std::min(min_heads, m.layers[l].heads));
    max_d_state = std::max(max_d_state, m.layers[l].d_state);
  }
  double mixer_params, mixer_acts, state;
  if (m.model == "mamba2") {
    const double di = double(m.expand) * D, gn = double(m.ngroups) * max_d_state;
    mixer_params = D * (2 * di + 2 * gn + di / std::max(1, m.head_dim)) + di * D + di * m.conv_width;
    mixer_acts = 12 * di + 4 * gn;
    state = di * max_d_state;
  } else {
    const double dk = double(m.expand_k) * D, dv = double(m.expand_v) * D;
    mixer_params = D * (2 * dk + 2 * dv) + D * m.gate_low_rank * 2 + (dk + dv) * m.conv_width;
    mixer_acts = 8 * (dk + dv);
    state = dk * dv / min_heads;
  }
  const double params = V * D + L * (mixer_params + 3 * D * F + 2 * D);
  const double per_token = L * (24 * D + mixer_acts + 6 * F) + 2 * V;
  const double states = L * state * 2 * (n / 16 + 1);
  const double param_bytes = 4 * params * (with_optimizer ? 4 : 2);
  const double act_bytes = 4 * (n * per_token + states);
  const double need = param_bytes + act_bytes;
  const double biggest_buffer = std::max({params, n * V, n * std::max(D, F), state});
  const std::string sizes = "params " + gib(param_bytes) + " (model.d_model, model.vocab_size, " +
                            "model.n_layers), activations " + gib(act_bytes) + " (" +
                            batch_option + " x the sequence length T)";
  if (biggest_buffer > double(INT_MAX))
    throw ConfigError("the model or batch is too large: one buffer would hold more than 2^31 "
                      "values; estimated memory " + gib(need) + ": " + sizes + ". Reduce the " +
                      "larger of the two");
  require_memory(need, "the model and batch", sizes, "reduce the larger of the two");
}

double token_set_bytes(double examples, double seq_len) {
  return 16.0 * examples * seq_len + 12.0 * examples;
}

void check_set_memory(const std::vector<MqarSegment>& segs, const std::string& option,
                      double extra_bytes_per_position) {
  double n = 0, t = 0;
  for (const MqarSegment& s : segs) {
    n += double(s.count);
    t = std::max(t, double(s.seq_len));
  }
  const double bytes = token_set_bytes(n, t) + extra_bytes_per_position * n * t;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%.0f examples x %.0f positions", n, t);
  require_memory(bytes, option + " (" + shape + ")", "",
                 "lower the counts of " + option + "'s segments");
}

void check_statex_family(const boost::program_options::variables_map& vm, const ModelConfig& m) {
  // An option the family ignores is refused when asked for on the command line, or set to a
  // value other than its default in a config file: a resolved config (a results file's
  // /config/ini, a token file's config_ini) lists every option at its default and is accepted.
  const StatexConfig defaults;
  auto given = [&](const char* name) {
    if (!vm.count(name) || vm[name].defaulted()) return false;
    if (given_on_command_line(name)) return true;
    return std::string(name) == "statex.gla_heads" ? vm[name].as<int>() != defaults.gla_heads
                                                   : vm[name].as<int>() != defaults.state_mult;
  };
  if (m.model == "mamba2" && given("statex.gla_heads"))
    throw ConfigError("--statex.gla_heads applies to GLA models only; this model is mamba2 (its "
                      "expansion is set by statex.state_mult)");
  if ((m.model == "gla" || m.model == "gated_deltanet") && given("statex.state_mult"))
    throw ConfigError("--statex.state_mult applies to Mamba2 models only; this model is " +
                      m.model + " (its expansion is set by statex.gla_heads)");
}

void check_expansion_changes(const ModelConfig& before, const ModelConfig& after,
                             const std::vector<int>& layers, const StatexConfig& sx) {
  for (int l : layers) {
    MixerShape a = before.layer_shape(l), b = after.layer_shape(l);
    if (a.heads != b.heads || a.d_state != b.d_state) return;
  }
  const bool gla = before.model == "gla" || before.model == "gated_deltanet";  // merge heads
  std::string what = gla ? "statex.gla_heads = " + std::to_string(sx.gla_heads) + " equals the " +
                               "layers' head count"
                         : "statex.state_mult = " + std::to_string(sx.state_mult) +
                               " keeps d_state";
  throw ConfigError("the expansion changes no layer's state size (" + what + "), so it would only " +
                    (sx.mode == "reinit" ? "re-initialise the trained mixers" : "copy them") +
                    "; choose " + (gla ? "statex.gla_heads below the current heads"
                                       : "statex.state_mult > 1"));
}

void warn_schedule(const ExperimentConfig& cfg) {
  const TrainConfig& t = cfg.train;
  if (t.warmup_steps >= t.steps)
    std::fprintf(stderr,
                 "warning: train.warmup_steps = %d is not below train.steps = %ld: the learning "
                 "rate never reaches its peak and the cosine decay never starts\n",
                 t.warmup_steps, t.steps);
}

}  // namespace statex::cli
