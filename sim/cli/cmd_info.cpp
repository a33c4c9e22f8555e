// statex info: build info, parameter table and state sizes of a config (or a checkpoint).
#include <omp.h>

#include <cstdio>
#include <iostream>

#include "build_info.h"
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
                             "Prints build info, parameter counts and recurrent state sizes.",
                             {"model."});
  if (vm.count("help")) return 0;
  validate(cfg.model);  // info reads only the model options
  ModelConfig mc = cfg.model;
  if (!checkpoint.empty()) mc = load_checkpoint(checkpoint).model;

  std::string why;
  bool cuda = cuda_available(&why);
  std::printf("build     commit %s, %s, %s, flags: %s\n", STATEX_GIT_COMMIT, STATEX_CXX_COMPILER,
              STATEX_BUILD_TYPE, STATEX_CXX_FLAGS);
  std::printf("openmp    %d threads\n", omp_get_max_threads());
  std::printf("cuda      %s\n", cuda ? "available" : ("not available: " + why).c_str());

  ParamTable t = build_param_table(mc);
  StateSize s = compute_state_size(mc);
  std::printf("model     %s, L=%d, D=%d, V=%d, mlp=%s, params %lld scalars (%lld bytes)\n",
              mc.model.c_str(), mc.n_layers, mc.d_model, mc.vocab_size, mc.mlp ? "yes" : "no",
              (long long)t.total(), (long long)t.total() * 4);
  std::printf("\n%-6s %-8s %-8s %16s %16s %18s\n", "layer", "heads", "d_state", "state scalars",
              "state bytes", "conv state scalars");
  for (int l = 0; l < mc.n_layers; ++l) {
    MixerShape m = mc.layer_shape(l);
    std::printf("%-6d %-8d %-8d %16lld %16lld %18lld\n", l, m.heads, m.d_state,
                (long long)s.layer_state_scalars[l], (long long)s.layer_state_scalars[l] * 4,
                (long long)s.layer_conv_state_scalars[l]);
  }
  std::printf("%-6s %-8s %-8s %16lld %16lld %18lld\n", "total", "", "",
              (long long)s.total_state_scalars(), (long long)s.total_state_scalars() * 4,
              (long long)s.total_conv_state_scalars());
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
