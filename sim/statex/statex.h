#pragma once
// StateX: post-training state expansion of selected layers (docs/design.md §3, arXiv 2509.22630,
// thunlp/StateX).
//   GLA:    the selected layers' heads are merged into statex.gla_heads heads (default 1).
//           Projection shapes are unchanged; g_norm.weight grows to the new Vh; the layer's
//           state grows by H / H_new.
//           reinit (paper): fresh mixer parameters, and the block's pre-mixer norm reset to one.
//           inherit: q/k/v/g/gk/o (and short-conv) weights kept, g_norm.weight tiled.
//   Mamba2: d_state N grows x statex.state_mult (default 4). in_proj rows of z, x and dt and the
//           x channels of conv1d are kept; the B and C rows / channels are new.
//           reinit: B/C fresh init; A_log, dt_bias and the gated norm weight reset to init.
//           inherit: the old B/C rows / channels tiled m times; everything else kept.
// Everything outside the selected layers' mixers is copied bit for bit.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/params.h"

namespace statex {

// Layer choice: evenly = range(0, L, L / count) (the paper's default), first, last, list.
// Throws ConfigError naming statex.count / statex.layers / statex.select.
std::vector<int> select_layers(const StatexConfig& sx, int n_layers);

// The model config after expanding `layers`. Throws ConfigError (e.g. statex.gla_heads that
// does not divide Dk and Dv).
ModelConfig expanded_config(const ModelConfig& cfg, const StatexConfig& sx,
                            const std::vector<int>& layers);

struct Expansion {
  ModelConfig cfg;             // new model config (per-layer shapes filled)
  ParamTable table;            // new parameter table
  std::vector<float> params;   // [table.total()] new parameters (host)
  std::vector<bool> fresh;     // per new table entry: new or reshaped -> AdamW moments start at 0
  std::vector<int> layers;     // expanded layers
};

// Expands `layers` of a model (host parameters). `seed` drives the fresh initialisation of
// reinit tensors.
Expansion expand_model(const ModelConfig& cfg, const ParamTable& table,
                       const std::vector<float>& params, const StatexConfig& sx,
                       const std::vector<int>& layers, uint64_t seed);
// The same for the layers the options select (select_layers).
Expansion expand_model(const ModelConfig& cfg, const ParamTable& table,
                       const std::vector<float>& params, const StatexConfig& sx, uint64_t seed);

// The training step at which a run expands (-1: never), from statex.step / statex.fraction.
int64_t expansion_step(const StatexConfig& sx, int64_t total_steps);

// Validates the statex.* options that do not depend on the model (mode, select, arm...).
void validate(const StatexConfig& sx, const ModelConfig& m, int64_t total_steps);

// The arms of a StateX experiment (statex.arm; the label itself is recorded in results).
enum class StatexArm {
  unlabelled,  // "": expands at statex.step / statex.fraction when one is set
  statex,      // expands the selected layers at the event step and restarts the schedule
  control,     // restarts the schedule at the event step without expanding
  scratch,     // trains the expanded architecture from step 0; no event
};
// Throws ConfigError naming statex.arm for an unknown label.
StatexArm parse_arm(const std::string& label);

// What a training run does about StateX, decided once from the options.
struct StatexPlan {
  StatexArm arm = StatexArm::unlabelled;
  int64_t event_step = -1;     // the event happens after this many steps; -1: no event
  bool event_expands = false;  // the event expands the layers (false: schedule restart only)
  std::vector<int> layers;     // the selected layers (empty when StateX is off)
  ModelConfig initial;         // architecture trained from step 0 (the expanded one for scratch)
  ModelConfig after_event;     // architecture after an expanding event
};
// Validates the options (validate) and selects the layers once. Throws ConfigError.
StatexPlan plan_statex(const StatexConfig& sx, const ModelConfig& m, int64_t total_steps);

}  // namespace statex
