#pragma once
// Slurm backend: one sbatch job array per submission, one array task per pending trial.
//   <out>/slurm/array.sbatch        the batch script (resources as #SBATCH lines)
//   <out>/slurm/list-<n>.list       n-th submission: array index -> trial id (line i+1 = task i)
//   <out>/slurm/jobs.tsv            every submitted job id and its list file (tab-separated)
//   <out>/slurm/<jobid>_<task>.out  Slurm's own output of each task (the trainer logs to
//                                   trials/<id>.log)
// Trials still queued or running in an earlier array (squeue) are not submitted again.
#include <set>
#include <string>
#include <vector>

#include "sim/sweep/sweep_dir.h"

namespace statex::sweep {

struct SlurmOptions {
  int cpus = 1;            // --cpus-per-task (also the trainer's --threads)
  std::string mem;         // --mem, e.g. 4G ("" = cluster default)
  std::string time;        // --time, e.g. 01:00:00
  std::string partition;   // --partition
  std::string gres;        // --gres, e.g. gpu:1
  int throttle = 0;        // %N: at most N tasks at once (0 = no limit)
  std::vector<std::string> trainer_cmd;  // default: this executable's "train"
  double poll_seconds = 10;
};

// Submits the pending trials (none: submits nothing). Returns the job id ("" if none).
std::string submit_array(const SweepDir& dir, const std::string& sweep_name,
                         const std::vector<Trial>& trials, const SlurmOptions& opt);
// Trial ids queued or running in arrays submitted from this sweep dir.
std::set<std::string> active_trials(const SweepDir& dir);
// Polls squeue until no array of this sweep dir has tasks left, printing progress.
void wait_for_arrays(const SweepDir& dir, const std::vector<Trial>& trials, double poll_seconds);
// Index statuses from results files and squeue: completed/failed from the file; queued or
// running in Slurm -> running; otherwise a trial with a log but no good result -> failed (the
// error names the log's last line); else pending.
std::vector<TrialStatus> collect(const SweepDir& dir, const std::vector<Trial>& trials);

// Runs a command, returns its stdout; throws with its stderr tail on non-zero exit when `check`.
std::string run_capture(const std::vector<std::string>& argv, int* exit_code = nullptr);

}  // namespace statex::sweep
