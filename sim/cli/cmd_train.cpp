// statex train: one run (optionally with a StateX expansion) -> HDF5 results (+ checkpoint).
// Output rules (docs/exit_codes.md): no path may name another input or output, an existing
// file is replaced only with --overwrite (or continued by --resume), one writer per path.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "sim/cli/commands.h"
#include "sim/cli/input_checks.h"
#include "sim/core/options.h"
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"
#include "sim/statex/statex.h"
#include "sim/train/trainer.h"

namespace po = boost::program_options;

namespace statex::cli {
namespace {

int64_t max_seq_len(const ExperimentConfig& cfg) {
  int64_t t = 0;
  for (auto* segs : {&cfg.mqar.train, &cfg.mqar.test, &cfg.mqar.valid})
    for (const MqarSegment& s : *segs) t = std::max<int64_t>(t, s.seq_len);
  return t;
}

// The results file a --resume continues may exist unless it records a finished run.
void check_resumed_results(const std::string& out, bool overwrite) {
  if (overwrite || access(out.c_str(), F_OK) != 0) return;
  std::string status;
  try {
    status = read_results(out).status;
  } catch (const std::exception& e) {
    throw ConfigError("--out '" + out + "' exists and is not a readable results file (" + e.what() +
                      "); pass --overwrite to replace it, or choose another --out");
  }
  if (status == "completed")
    throw ConfigError("--out '" + out + "' holds a completed run; pass --overwrite to replace it, " +
                      "or choose another --out");
}

// Refuses an expansion (statex / scratch arm) that would change no layer's state size. Returns
// the expanded model (the model itself when the run does not expand).
ModelConfig check_planned_expansion(const ExperimentConfig& cfg) {
  validate(cfg.statex, cfg.model, cfg.train.steps);
  bool expands = cfg.statex.arm == "scratch" ||
                 (cfg.statex.arm != "control" && expansion_step(cfg.statex, cfg.train.steps) >= 0);
  if (!expands) return cfg.model;
  std::vector<int> layers = select_layers(cfg.statex, cfg.model.n_layers);
  ModelConfig after = expanded_config(cfg.model, cfg.statex, layers);
  check_expansion_changes(cfg.model, after, layers, cfg.statex);
  return after;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  ExperimentConfig cfg;
  TrainerOptions opt;
  bool overwrite = false;
  po::options_description io("Run options");
  io.add_options()
      ("out,o", po::value<std::string>(&opt.out_path)->default_value("run.h5"),
       "results file (HDF5, written atomically; an existing file needs --overwrite)")
      ("checkpoint-out", po::value<std::string>(&opt.checkpoint_out),
       "write a checkpoint (HDF5) here at the end, every train.checkpoint_every steps and on "
       "SIGTERM / SIGINT")
      ("resume", po::value<std::string>(&opt.resume_path),
       "continue exactly from this checkpoint (same options as the original run)")
      ("init-from", po::value<std::string>(&opt.init_from),
       "start from this checkpoint's weights with a fresh optimizer and schedule")
      ("overwrite", po::bool_switch(&overwrite),
       "replace existing --out / --checkpoint-out files (kept as <path>.prev until the run "
       "completes, put back if it fails)")
      ("quiet,q", po::bool_switch(&opt.quiet), "no header and no progress lines");
  auto vm = parse_experiment(argc, argv, cfg, io,
                             "usage: statex train [--config FILE.ini] [options]\n"
                             "Trains a GLA, Mamba2, attention or Gated DeltaNet model on MQAR (or its variants) and writes HDF5 results.\n"
                             "Exit codes: 0 completed, 2 bad input (nothing written), 5 run failed, "
                             "75 interrupted by SIGTERM/SIGINT (resumable), 1 other errors.");
  if (vm.count("help")) return 0;
  finalize(cfg);
  if (!opt.resume_path.empty() && !opt.init_from.empty())
    throw ConfigError("--resume and --init-from are exclusive: resume continues a run, "
                      "init-from starts a new one from its weights");
  require_output_path("--out", opt.out_path);
  if (vm.count("checkpoint-out")) require_output_path("--checkpoint-out", opt.checkpoint_out);
  const std::string config = vm.count("config") ? vm["config"].as<std::string>() : "";
  check_distinct_paths({{"--config", config, false},
                        {"--resume", opt.resume_path, false},
                        {"--init-from", opt.init_from, false},
                        {"--data.train", cfg.mqar.train_file, false},
                        {"--data.test", cfg.mqar.test_file, false},
                        {"--data.valid", cfg.mqar.valid_file, false},
                        {"--out", opt.out_path, true},
                        {"--checkpoint-out", opt.checkpoint_out, true}},
                       {{"--resume", "--checkpoint-out"}});
  check_statex_family(vm, cfg.model);
  const ModelConfig expanded = check_planned_expansion(cfg);
  // Before and after a StateX expansion.
  for (const ModelConfig* m : {static_cast<const ModelConfig*>(&cfg.model), &expanded})
    check_memory(*m, int64_t(cfg.train.batch_size) * max_seq_len(cfg), /*with_optimizer=*/true);
  warn_schedule(cfg);

  const bool resuming = !opt.resume_path.empty();
  const bool ck_continues = resuming && !opt.checkpoint_out.empty() &&
                            resolve_path(opt.checkpoint_out) == resolve_path(opt.resume_path);
  // Output paths first (a missing or read-only directory, a directory given as a file), then the
  // locks, then what exists there.
  check_output_path("--out", opt.out_path);
  if (!opt.checkpoint_out.empty()) check_output_path("--checkpoint-out", opt.checkpoint_out);
  OutputLock out_lock("--out", opt.out_path);
  std::unique_ptr<OutputLock> ck_lock;
  if (!opt.checkpoint_out.empty())
    ck_lock = std::make_unique<OutputLock>("--checkpoint-out", opt.checkpoint_out);
  if (resuming)
    check_resumed_results(opt.out_path, overwrite);
  else
    refuse_existing("--out", opt.out_path, overwrite);
  if (!opt.checkpoint_out.empty() && !ck_continues)
    refuse_existing("--checkpoint-out", opt.checkpoint_out, overwrite);

  Trainer trainer(cfg, opt);
  trainer.prepare();  // every input check: a refusal (exit 2) leaves every file as it was

  // The overwrite / rollback protocol (output_guard.h): from here on a completed file at --out
  // or --checkpoint-out is never lost, whatever happens to this run.
  using Mode = ReplacedFile::Mode;
  ReplacedFile old_out(opt.out_path, resuming ? Mode::continue_own : Mode::replace);
  std::unique_ptr<ReplacedFile> old_ck;
  if (!opt.checkpoint_out.empty())
    old_ck = std::make_unique<ReplacedFile>(opt.checkpoint_out,
                                            ck_continues ? Mode::continue_own : Mode::replace);
  auto put_back = [&] {
    for (const std::string& note : {old_out.fail(), old_ck ? old_ck->fail() : std::string()})
      if (!note.empty()) std::cerr << "statex train: " << note << "\n";
  };
  int rc;
  try {
    rc = trainer.run();
  } catch (...) {
    put_back();
    throw;
  }
  if (rc == kExitOk) {
    old_out.complete();
    if (old_ck) old_ck->complete();
  } else if (rc == kExitFailed) {
    put_back();
  }
  return rc;
}

}  // namespace statex::cli
