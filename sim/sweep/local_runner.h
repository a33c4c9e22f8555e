#pragma once
// Runs a sweep's pending trials on this machine, `jobs` trainer processes at a time.
// Resume: a trial whose results file says completed is skipped; anything else (missing,
// corrupt, partial, running, failed) is run again. Each trainer dies with the runner
// (PR_SET_PDEATHSIG), so a killed runner loses only the trials in flight.
#include <string>
#include <vector>

#include "sim/sweep/sweep_dir.h"

namespace statex::sweep {

struct LocalOptions {
  int jobs = 1;
  int threads_per_job = 0;  // 0 = max(1, cores / jobs)
  // argv prefix of the trainer; it gets "--config X --out Y --train.threads N" appended
  // (train.threads is a registry option, so every trainer version accepts it).
  std::vector<std::string> trainer_cmd;
  bool quiet = false;  // no progress lines
};

// Returns the number of trials that failed (0 = all completed).
int run_local(const SweepDir& dir, const std::vector<Trial>& trials,
              const std::vector<std::string>& swept, const LocalOptions& opt);

// The default trainer: this executable's "train" subcommand.
std::vector<std::string> self_trainer_cmd();
// Splits a --trainer-cmd string on whitespace.
std::vector<std::string> split_command(const std::string& cmd);
// Error text for a trial whose trainer exited with wait() status `wstatus`.
std::string describe_failure(int wstatus, const ResultProbe& probe, const std::string& log_path);

}  // namespace statex::sweep
