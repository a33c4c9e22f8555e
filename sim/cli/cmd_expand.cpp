// statex expand: StateX on a checkpoint (docs/design.md §3) -> a weights-only checkpoint of the
// expanded model. Continue training it with `statex train --init-from OUT` (fresh AdamW: every
// moment starts at zero, the schedule starts with its warm-up).
#include <cstdio>

#include "sim/cli/commands.h"
#include "sim/cli/input_checks.h"
#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"
#include "sim/model/state_size.h"
#include "sim/statex/statex.h"

namespace po = boost::program_options;

namespace statex::cli {

int cmd_expand(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string in, out;
  bool overwrite = false;
  po::options_description extra("Expand options");
  extra.add_options()("checkpoint", po::value<std::string>(&in), "input checkpoint (HDF5)")(
      "out,o", po::value<std::string>(&out), "output checkpoint of the expanded model")(
      "overwrite", po::bool_switch(&overwrite), "replace an existing --out");
  auto vm = parse_experiment(argc, argv, cfg, extra,
                             "usage: statex expand --checkpoint IN.h5 --out OUT.h5 [statex.* options]\n"
                             "Applies StateX state expansion to the selected layers of a checkpoint.",
                             {"statex.count", "statex.select", "statex.layers", "statex.mode",
                              "statex.gla_heads", "statex.state_mult", "train.seed"});
  if (vm.count("help")) return 0;
  if (in.empty()) throw ConfigError("--checkpoint: give the checkpoint to expand");
  if (!vm.count("out")) throw ConfigError("--out: give the path of the expanded checkpoint");
  auto out_lock = guard_output({{"--config", vm.count("config") ? vm["config"].as<std::string>() : "", false},
                                {"--checkpoint", in, false}},
                               "--out", out, overwrite);
  validate(cfg.statex);
  Checkpoint ck = load_checkpoint(in);
  check_statex_family(vm, ck.model);
  validate(cfg.statex, ck.model, /*total_steps=*/1);
  {
    std::vector<int> layers = select_layers(cfg.statex, ck.model.n_layers);
    const ModelConfig after = expanded_config(ck.model, cfg.statex, layers);
    check_expansion_changes(ck.model, after, layers, cfg.statex);
    check_memory(after, /*tokens_per_batch=*/0, /*with_optimizer=*/false);
  }
  Expansion x = expand_model(ck.model, ck.table, ck.params, cfg.statex, cfg.train.seed + 0x5ca1ab1eull);
  Checkpoint outck;
  outck.model = x.cfg;
  outck.step = ck.step;
  outck.table = x.table;
  outck.params = x.params;
  outck.has_optimizer = false;
  std::string layers;
  for (int l : x.layers) layers += (layers.empty() ? "" : ",") + std::to_string(l);
  outck.expansion = ExpansionOrigin{{x.layers.begin(), x.layers.end()}, cfg.statex.mode, in};
  save_checkpoint(out, outck);
  auto before = compute_state_size(ck.model).total_state_scalars();
  auto after = compute_state_size(x.cfg).total_state_scalars();
  std::printf("expanded layers %s (%s): state %lld -> %lld scalars (%lld -> %lld bytes), "
              "params %lld -> %lld; wrote %s\n",
              layers.c_str(), cfg.statex.mode.c_str(), (long long)before, (long long)after,
              (long long)before * 4, (long long)after * 4, (long long)ck.table.total(),
              (long long)x.table.total(), out.c_str());
  return 0;
}

}  // namespace statex::cli
