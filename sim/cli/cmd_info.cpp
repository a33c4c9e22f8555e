// statex info: build info, parameter table and state sizes of a config (or a checkpoint).
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "build_info.h"
#include "sim/core/provenance.h"
#include "sim/cli/commands.h"
#include "sim/core/backend.h"
#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/model/param_layout.h"
#include "sim/model/state_size.h"

namespace po = boost::program_options;

namespace statex::cli {

namespace {
const char* describe(StateConvention c) {
  switch (c) {
    case StateConvention::recurrent:
      return "recurrent state only (ours; attention: its KV cache)";
    case StateConvention::recurrent_conv:
      return "recurrent state + conv state, (W-1) x channels of each causal conv";
    case StateConvention::zoology:
      return "Zoology's state_size(): GLA state + W x channels of its short convs; Mamba2 "
             "2 D N, no conv; Gated DeltaNet H K V, no conv; attention 2 T D";
  }
  return "";
}
}  // namespace

int cmd_info(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string checkpoint;
  bool list_params = false;
  std::string state_convention = "all";
  po::options_description extra("Info options");
  extra.add_options()("checkpoint", po::value<std::string>(&checkpoint),
                      "describe this checkpoint's model instead of the config's")(
      "params", po::bool_switch(&list_params), "list every parameter tensor")(
      "state", po::value<std::string>(&state_convention)->default_value("all"),
      "state-size convention to print: recurrent (recurrent state only; ours), recurrent+conv "
      "(plus the (W-1) x channels conv state), zoology (Zoology's state_size() per family, "
      "docs/design.md), or all");
  auto vm = parse_experiment(argc, argv, cfg, extra,
                             "usage: statex info [--config FILE.ini] [options]\n"
                             "Prints build info, parameter counts and state sizes in three\n"
                             "conventions: recurrent, recurrent+conv and zoology (--state picks\n"
                             "one; attention: its KV cache at the longest mqar.test length T).",
                             {"model.", "mqar.test"});
  if (vm.count("help")) return 0;
  validate(cfg.model);  // info reads only the model options (and mqar.test for attention)
  // The conventions side by side (docs/design.md §1 "State accounting"), or the one --state names.
  std::vector<StateConvention> shown;
  if (state_convention == "all")
    shown.assign(std::begin(kStateConventions), std::end(kStateConventions));
  else
    shown.push_back(parse_state_convention(state_convention, "--state"));
  ModelConfig mc = cfg.model;
  if (!checkpoint.empty()) mc = load_checkpoint(checkpoint).model;

  std::string why;
  bool cuda = cuda_available(&why);
  std::printf("build     commit %s, %s, %s\n", STATEX_GIT_COMMIT, STATEX_CXX_COMPILER,
              STATEX_BUILD_TYPE);
  // What a run's bits depend on beyond its config (docs/reproducibility.md).
  for (const auto& [name, value] : provenance().fields())
    std::printf("  %-10s %s\n", name.c_str(), value.c_str());
  std::printf("openmp    %d threads\n", omp_get_max_threads());
  std::printf("cuda      %s\n", cuda ? "available" : ("not available: " + why).c_str());

  ParamTable t = build_param_table(mc);
  // Attention's state is its KV cache, counted at the longest test length (mqar.test).
  int eval_len = 0;
  for (const MqarSegment& seg : parse_segments(cfg.mqar_test, "mqar.test"))
    eval_len = std::max(eval_len, seg.seq_len);
  StateSize s = compute_state_size(mc, eval_len);
  std::printf("model     %s, L=%d, D=%d, V=%d, mlp=%s, params %lld scalars (%lld bytes)\n",
              mc.model.c_str(), mc.n_layers, mc.d_model, mc.vocab_size, mc.mlp ? "yes" : "no",
              (long long)t.total(), (long long)t.total() * 4);
  std::printf("\nstate sizes, bytes = 4 x scalars (fp32); convention%s:\n",
              shown.size() > 1 ? "s" : "");
  for (StateConvention c : shown) std::printf("  %-15s %s\n", convention_name(c), describe(c));
  const bool kv = s.is_kv_cache();
  std::printf("%-6s %-6s %-8s", "layer", "heads", "d_state");
  for (StateConvention c : shown) {
    if (c == StateConvention::recurrent) {
      std::printf(" %16s %14s", kv ? "KV cache scalars" : "state scalars",
                  kv ? "KV cache bytes" : "state bytes");
    } else {
      std::string name = convention_name(c);
      if (c == StateConvention::recurrent_conv) std::printf(" %18s", "conv state scalars");
      std::printf(" %*s %*s", int(name.size() + 8), (name + " scalars").c_str(),
                  int(name.size() + 6), (name + " bytes").c_str());
    }
  }
  std::printf("\n");
  auto row = [&](const char* name, int heads, int d_state, int64_t rec, int64_t conv,
                 int64_t zoo) {
    std::printf("%-6s %-6s %-8s", name, heads < 0 ? "" : std::to_string(heads).c_str(),
                d_state < 0 ? "" : std::to_string(d_state).c_str());
    for (StateConvention c : shown) {
      if (c == StateConvention::recurrent) {
        std::printf(" %16lld %14lld", (long long)rec, (long long)rec * 4);
      } else {
        const int64_t v = c == StateConvention::zoology ? zoo : rec + conv;
        const int w = int(std::string(convention_name(c)).size());
        if (c == StateConvention::recurrent_conv) std::printf(" %18lld", (long long)conv);
        std::printf(" %*lld %*lld", w + 8, (long long)v, w + 6, (long long)v * 4);
      }
    }
    std::printf("\n");
  };
  for (int l = 0; l < mc.n_layers; ++l) {
    MixerShape m = mc.layer_shape(l);
    row(std::to_string(l).c_str(), m.heads, m.d_state, s.layer_state_scalars[l],
        s.layer_conv_state_scalars[l], s.layer_zoology_state_scalars[l]);
  }
  row("total", -1, -1, s.total_state_scalars(), s.total_conv_state_scalars(),
      s.total_zoology_state_scalars());
  if (s.is_kv_cache())
    std::printf("state     KV cache at length T = %lld (2 T D per layer; it grows with T; set by "
                "mqar.test)\n",
                (long long)s.kv_cache_len);
  if (std::find(shown.begin(), shown.end(), StateConvention::zoology) != shown.end()) {
    // Where the zoology count is not what the name suggests, say so.
    if (mc.model == "attention" && mc.use_short_conv)
      std::printf("note      zoology: Zoology's MHA has no short conv; ours is counted as "
                  "Zoology counts a ShortConvolution, width x channels = %d x 3D\n",
                  mc.conv_width);
    if (mc.model == "mamba2" && mc.expand != 2)
      std::printf("note      zoology: Zoology counts Mamba2 as 2 D N whatever expand (here %d): "
                  "not the d_inner N scalars of the state\n", mc.expand);
  }
  if (list_params) {
    std::printf("\n%-50s %-18s %10s\n", "parameter", "shape", "scalars");
    for (auto& e : t.entries()) {
      std::string shape;
      for (size_t i = 0; i < e.shape.size(); ++i)
        shape += (i ? "x" : "") + std::to_string(e.shape[i]);
      std::printf("%-50s %-18s %10lld\n", e.name.c_str(), shape.c_str(), (long long)e.numel());
    }
  }
  return 0;
}

}  // namespace statex::cli
