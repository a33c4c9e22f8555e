// statex info: build info, parameter table and state sizes of a config (or a checkpoint).
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

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

int cmd_info(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string checkpoint;
  bool list_params = false;
  po::options_description extra("Info options");
  extra.add_options()("checkpoint", po::value<std::string>(&checkpoint),
                      "describe this checkpoint's model instead of the config's")(
      "params", po::bool_switch(&list_params), "list every parameter tensor");
  auto vm = parse_experiment(argc, argv, cfg, extra,
                             "usage: statex info [--config FILE.ini] [options]\n"
                             "Prints build info, parameter counts and recurrent state sizes\n"
                             "(attention: its KV cache at the longest mqar.test length T).",
                             {"model.", "mqar.test"});
  if (vm.count("help")) return 0;
  validate(cfg.model);  // info reads only the model options (and mqar.test for attention)
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
  // Two conventions side by side (docs/results_format.md): ours counts the recurrent state only;
  // Zoology's counts the short-conv state too ("recurrent+conv").
  std::printf("\nstate: recurrent state (ours) and recurrent+conv (Zoology's convention); "
              "bytes = 4 x scalars (fp32)\n");
  std::printf("%-6s %-6s %-8s %14s %12s %18s %22s %20s\n", "layer", "heads", "d_state",
              s.is_kv_cache() ? "KV cache scalars" : "state scalars",
              s.is_kv_cache() ? "KV cache bytes" : "state bytes", "conv state scalars", "recurrent+conv scalars",
              "recurrent+conv bytes");
  auto row = [](const char* name, int heads, int d_state, int64_t rec, int64_t conv) {
    std::printf("%-6s %-6s %-8s %14lld %12lld %18lld %22lld %20lld\n", name,
                heads < 0 ? "" : std::to_string(heads).c_str(),
                d_state < 0 ? "" : std::to_string(d_state).c_str(), (long long)rec,
                (long long)rec * 4, (long long)conv, (long long)(rec + conv),
                (long long)(rec + conv) * 4);
  };
  for (int l = 0; l < mc.n_layers; ++l) {
    MixerShape m = mc.layer_shape(l);
    row(std::to_string(l).c_str(), m.heads, m.d_state, s.layer_state_scalars[l],
        s.layer_conv_state_scalars[l]);
  }
  row("total", -1, -1, s.total_state_scalars(), s.total_conv_state_scalars());
  if (s.is_kv_cache())
    std::printf("state     KV cache at length T = %lld (2 T D per layer; it grows with T; set by "
                "mqar.test)\n",
                (long long)s.kv_cache_len);
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
