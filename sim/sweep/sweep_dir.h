#pragma once
// The on-disk layout of one sweep (docs/sweeps.md):
//   <out>/sweep.ini            copy of the sweep file
//   <out>/trials/<id>.ini      resolved config of each trial (statex train --config)
//   <out>/trials/<id>.h5       results file written by the trainer
//   <out>/trials/<id>.log      trainer stdout + stderr
//   <out>/index.csv            trial_id,status,result_path,error,<one column per swept option>
//   <out>/best_lr.csv          best learning rate per group (best_lr.h)
//   <out>/slurm/               Slurm backend files (slurm_backend.h)
#include <string>
#include <vector>

#include "sim/sweep/result_probe.h"
#include "sim/sweep/sweep_spec.h"

namespace statex::sweep {

// Index status of one trial: pending | running | completed | failed.
struct TrialStatus {
  std::string status = "pending";
  std::string error;
};

class SweepDir {
 public:
  explicit SweepDir(const std::string& out);  // makes <out> and <out>/trials; path made absolute
  const std::string& root() const { return root_; }
  std::string ini(const std::string& id) const { return root_ + "/trials/" + id + ".ini"; }
  std::string result(const std::string& id) const { return root_ + "/trials/" + id + ".h5"; }
  std::string log(const std::string& id) const { return root_ + "/trials/" + id + ".log"; }
  static std::string result_relpath(const std::string& id) { return "trials/" + id + ".h5"; }

  // Copies the sweep file and writes every trial's .ini (only when its text changed).
  void prepare(const std::string& sweep_file, const std::vector<Trial>& trials) const;
  // Takes an exclusive lock on <out>/.lock for this process's life; throws if another runner
  // holds it. The kernel drops it when the process dies, even by SIGKILL.
  void lock() const;
  // Rewrites index.csv atomically.
  void write_index(const std::vector<Trial>& trials, const std::vector<std::string>& swept,
                   const std::vector<TrialStatus>& status) const;
  // The index a runner leaves when it stops on an error (a full disk): written atomically if
  // possible, else over the existing index.csv in place (a full disk has no room for a new file
  // but the old one's blocks are reused), with error texts shortened so it fits. Never throws;
  // returns "" or why it could not be written.
  std::string write_index_last_resort(const std::vector<Trial>& trials,
                                      const std::vector<std::string>& swept,
                                      const std::vector<TrialStatus>& status) const;

 private:
  std::string root_;
};

// Writes `content` to `path` via path.tmp + fsync + rename.
void write_file_atomically(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);  // "" if absent
bool file_exists(const std::string& path);
void make_dirs(const std::string& path);
// Last non-empty line of a text file (for error messages), at most 200 characters.
std::string last_line(const std::string& path);
std::string csv_field(const std::string& s);
// What the index says of a trial judged from its results file alone.
TrialStatus status_from_probe(const ResultProbe& p);

}  // namespace statex::sweep
