// statex sweep: expand a sweep file into trials and run them locally or as one Slurm job array.
// File syntax, output layout and resume rules: docs/sweeps.md.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "sim/cli/commands.h"
#include "sim/core/options.h"
#include "sim/sweep/best_lr.h"
#include "sim/sweep/local_runner.h"
#include "sim/sweep/slurm_backend.h"
#include "sim/sweep/sweep_dir.h"
#include "sim/sweep/sweep_spec.h"

namespace po = boost::program_options;

namespace statex::cli {
namespace {

const char* kUsage =
    "usage: statex sweep FILE --out DIR [--jobs N] [--threads-per-job T]\n"
    "       statex sweep FILE --out DIR --backend slurm [--slurm-* ...] [--wait]\n"
    "       statex sweep FILE --out DIR --collect      (update index.csv from results and squeue)\n"
    "       statex sweep FILE --list                   (print the trials, run nothing)\n"
    "       statex sweep --summarize DIR               (write DIR/best_lr.csv)\n"
    "Rerunning the same command resumes: completed trials are skipped.";

void print_summary(const std::vector<sweep::TrialStatus>& status) {
  size_t done = 0, failed = 0, running = 0;
  for (auto& s : status) {
    done += s.status == "completed";
    failed += s.status == "failed";
    running += s.status == "running";
  }
  std::fprintf(stderr, "[sweep] %zu/%zu completed, %zu failed, %zu running, %zu pending\n", done,
               status.size(), failed, running, status.size() - done - failed - running);
}

int summarize(const std::string& out_dir) {
  sweep::SweepDir dir(out_dir);
  std::string copy = dir.root() + "/sweep.ini";
  if (!sweep::file_exists(copy)) throw ConfigError("--summarize: '" + copy + "' not found (not a sweep directory?)");
  sweep::SweepSpec spec = sweep::parse_sweep_file(copy, {});
  auto trials = sweep::expand(spec);
  int groups = sweep::write_best_lr(dir, trials, sweep::swept_options(spec));
  std::fprintf(stderr, "[sweep] wrote %s/best_lr.csv (%d groups)\n", dir.root().c_str(), groups);
  return 0;
}

}  // namespace

int cmd_sweep(int argc, char** argv) {
  std::string file, out, backend = "local", trainer_cmd, summarize_dir;
  int jobs = 1, threads_per_job = 0;
  sweep::SlurmOptions slurm;
  po::options_description desc("Options");
  desc.add_options()("help,h", "show this help")
      ("file", po::value(&file), "sweep file (INI with a [sweep] section)")
      ("out", po::value(&out), "output directory (created; reused to resume)")
      ("backend", po::value(&backend)->default_value("local"), "local | slurm")
      ("jobs", po::value(&jobs)->default_value(1), "local: trainer processes at once")
      ("threads-per-job", po::value(&threads_per_job)->default_value(0),
       "local: OpenMP threads per trainer (0 = max(1, cores / jobs))")
      ("slurm-cpus", po::value(&slurm.cpus)->default_value(1), "slurm: --cpus-per-task (= trainer threads)")
      ("slurm-mem", po::value(&slurm.mem), "slurm: --mem, e.g. 4G")
      ("slurm-time", po::value(&slurm.time), "slurm: --time, e.g. 02:00:00")
      ("slurm-partition", po::value(&slurm.partition), "slurm: --partition")
      ("slurm-gres", po::value(&slurm.gres), "slurm: --gres, e.g. gpu:1")
      ("slurm-throttle", po::value(&slurm.throttle)->default_value(0),
       "slurm: at most N array tasks at once (the %N of --array; 0 = no limit)")
      ("wait", "slurm: wait until the array finishes, then collect")
      ("collect", "update index.csv (and best_lr.csv) from results files and squeue; run nothing")
      ("list", "print trial ids and swept values; run nothing")
      ("summarize", po::value(&summarize_dir), "write DIR/best_lr.csv for an existing sweep directory");
  po::options_description hidden;
  hidden.add_options()
      ("trainer-cmd", po::value(&trainer_cmd), "trainer argv prefix (tests); default: this binary's train")
      ("poll-seconds", po::value(&slurm.poll_seconds)->default_value(10), "slurm --wait poll interval")
      ("quiet", "no progress lines");
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).style(command_line_style()).run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(std::string(e.what()) + " (statex sweep --help)");
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n\n" << desc << "\n";
    return 0;
  }
  if (!summarize_dir.empty()) return summarize(summarize_dir);
  if (file.empty()) throw ConfigError("no sweep file given (statex sweep --help)");
  if (backend != "local" && backend != "slurm") throw ConfigError("--backend must be local or slurm, not '" + backend + "'");
  if (jobs < 1) throw ConfigError("--jobs must be >= 1");
  if (slurm.cpus < 1) throw ConfigError("--slurm-cpus must be >= 1");

  sweep::SweepSpec spec = sweep::parse_sweep_file(file, experiment_option_names());
  auto trials = sweep::expand(spec);
  auto swept = sweep::swept_options(spec);
  if (vm.count("list")) {
    std::cout << "trial_id";
    for (auto& o : swept) std::cout << "\t" << o;
    std::cout << "\n";
    for (auto& t : trials) {
      std::cout << t.id;
      for (auto& sw : t.swept) std::cout << "\t" << sw.second;
      std::cout << "\n";
    }
    return 0;
  }
  if (out.empty()) throw ConfigError("--out DIR is required");
  sweep::SweepDir dir(out);
  dir.lock();
  dir.prepare(file, trials);
  std::vector<std::string> trainer;
  if (!trainer_cmd.empty()) trainer = sweep::split_command(trainer_cmd);

  if (vm.count("collect") || backend == "slurm") {
    if (!vm.count("collect")) {
      slurm.trainer_cmd = trainer;
      sweep::submit_array(dir, spec.name, trials, slurm);
      if (vm.count("wait")) sweep::wait_for_arrays(dir, trials, slurm.poll_seconds);
    }
    auto status = sweep::collect(dir, trials);
    dir.write_index(trials, swept, status);
    sweep::write_best_lr(dir, trials, swept);
    print_summary(status);
    for (auto& s : status)
      if (s.status == "failed") return 1;
    return 0;
  }

  sweep::LocalOptions local;
  local.jobs = jobs;
  local.threads_per_job = threads_per_job;
  local.trainer_cmd = trainer;
  local.quiet = vm.count("quiet") > 0;
  int failed = sweep::run_local(dir, trials, swept, local);
  sweep::write_best_lr(dir, trials, swept);
  std::fprintf(stderr, "[sweep] finished: %zu trials, %d failed; index: %s/index.csv\n", trials.size(),
               failed, dir.root().c_str());
  return failed == 0 ? 0 : 1;
}

}  // namespace statex::cli
