// statex train: one run (optionally with a StateX expansion) -> HDF5 results (+ checkpoint).
#include <iostream>

#include "sim/cli/commands.h"
#include "sim/core/options.h"
#include "sim/train/trainer.h"

namespace po = boost::program_options;

namespace statex::cli {

int cmd_train(int argc, char** argv) {
  ExperimentConfig cfg;
  TrainerOptions opt;
  po::options_description io("Run options");
  io.add_options()
      ("out,o", po::value<std::string>(&opt.out_path)->default_value("run.h5"),
       "results file (HDF5, written atomically)")
      ("checkpoint-out", po::value<std::string>(&opt.checkpoint_out),
       "write a checkpoint (HDF5) here at the end and every train.checkpoint_every steps")
      ("resume", po::value<std::string>(&opt.resume_path),
       "continue exactly from this checkpoint (same options as the original run)")
      ("init-from", po::value<std::string>(&opt.init_from),
       "start from this checkpoint's weights with a fresh optimizer and schedule")
      ("quiet,q", po::bool_switch(&opt.quiet), "no progress lines");
  auto vm = parse_experiment(argc, argv, cfg, io,
                             "usage: statex train [--config FILE.ini] [options]\n"
                             "Trains a GLA or Mamba2 model on MQAR and writes HDF5 results.");
  if (vm.count("help")) return 0;
  finalize(cfg);
  if (!opt.resume_path.empty() && !opt.init_from.empty())
    throw ConfigError("--resume and --init-from are exclusive: resume continues a run, "
                      "init-from starts a new one from its weights");
  Trainer trainer(cfg, opt);
  return trainer.run();
}

}  // namespace statex::cli
