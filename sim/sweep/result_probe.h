#pragma once
// Reads just enough of a trial's results file (docs/results_format.md) to decide whether the
// trial is done: root attributes status, failure_reason and best_accuracy, and /valid's
// best_accuracy when the run has a validation split. The file goes through the integrity check
// of every statex reader (h5::open_file: file CRC-32, per-object digests) first. Never throws: a
// missing, damaged, truncated, non-HDF5 or foreign file is reported as such, so the sweep reruns
// it (a damaged file is kept beside, as <id>.h5.damaged).
#include <string>

namespace statex::sweep {

struct ResultProbe {
  enum class State { missing, unreadable, running, completed, failed };
  State state = State::missing;
  std::string failure_reason;  // trainer's reason when failed
  std::string detail;          // why unreadable
  bool damaged = false;        // unreadable because its bytes are damaged / truncated / not HDF5
  double best_accuracy = -1;   // root attr best_accuracy, else max of /eval/accuracy; -1 = none
  bool has_valid = false;      // the run has a validation split (/valid group)
  double best_valid_accuracy = -1;  // /valid attr best_accuracy; -1 = none
};

ResultProbe probe_result(const std::string& path);
const char* state_name(ResultProbe::State s);

}  // namespace statex::sweep
