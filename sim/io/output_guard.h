#pragma once
// Output paths that never destroy inputs or other outputs (docs/exit_codes.md, "Outputs"):
//   - every command compares all its input and output paths after resolving links and refuses
//     two that name the same file (ConfigError, exit 2);
//   - an existing file is replaced only with --overwrite (--resume continues its own results);
//   - one writer per output path: an flock on "<path>.lock" for the life of the command;
//   - a replaced file is kept as "<path>.prev" until the new run completes, and put back when
//     it fails, so a failed new run never replaces an older file.
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace statex {

// One path a command reads or writes, and the option that named it (for messages).
struct PathArg {
  std::string option;  // "--out"
  std::string path;    // as given; "" = option not used (skipped)
  bool output = false;
};

// Absolute path with every symlink resolved; for a path that does not exist yet, its directory
// is resolved and the file name appended. Never throws (unresolvable parts are kept as given).
std::string resolve_path(const std::string& path);

// Throws ConfigError when two arguments name the same file, except the option pairs in
// `allowed` (e.g. {"--resume", "--checkpoint-out"}: continue a run and keep its checkpoint).
void check_distinct_paths(const std::vector<PathArg>& args,
                          const std::vector<std::pair<std::string, std::string>>& allowed = {});

// Throws ConfigError for an output option given as "" (e.g. --out '').
void require_output_path(const std::string& option, const std::string& path);

// Throws ConfigError when `path` (or "<path>.prev", the file an unfinished run replaced) exists
// and `overwrite` is false.
void refuse_existing(const std::string& option, const std::string& path, bool overwrite);

// Exclusive lock on "<path>.lock" while the object lives (the kernel drops it when the process
// dies, even by SIGKILL). Throws ConfigError naming `option` when another process holds it.
class OutputLock {
 public:
  OutputLock(const std::string& option, const std::string& path);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::string lock_path_;
  int fd_ = -1;
};

// The whole guard of a command that reads `inputs` and writes one file `out` (named by
// `out_option`): `out` given, every path distinct, its directory writable, the lock taken, and no
// existing file replaced unless `overwrite`. Hold the returned lock for the life of the command.
std::unique_ptr<OutputLock> guard_output(std::vector<PathArg> inputs,
                                         const std::string& out_option, const std::string& out,
                                         bool overwrite);

// The overwrite / rollback protocol of `statex train` (docs/exit_codes.md, "A failed new run
// never replaces an older file"). Invariant: **a completed file is never lost**, whatever
// sequence of completed, failed, interrupted and killed (SIGKILL) runs writes `path`: after every
// step, the most recently completed file written there is at `path` or at "<path>.prev".
//   - "<path>.prev" (a hard link, no copy) holds the file a run in progress replaced; it is
//     removed only when a run at `path` completes, and put back when one fails.
//   - A run that starts while "<path>.prev" exists (an earlier run was interrupted or killed)
//     keeps it, unless the file at `path` is itself completed (then that newer file becomes
//     "<path>.prev"), so a chain of unfinished runs can never push the completed file out.
//   - Every step is atomic on its own (link to a temporary name + rename), so a SIGKILL between
//     any two system calls leaves one of the two names holding the completed file.
// "Completed" is what the file records: status = completed (results), /trainer status =
// completed (the final checkpoint of a completed run).
class ReplacedFile {
 public:
  enum class Mode {
    replace,       // a new run: any file at `path` is an older record
    continue_own,  // --resume: `path` holds this run's own unfinished record (or nothing)
  };
  // Call after every input check, just before the run writes anything.
  ReplacedFile(const std::string& path, Mode mode);
  // The run completed and `path` holds its completed file: the kept copy is dropped.
  void complete();
  // The run failed: its file moves to "<path>.failed" and the kept file is put back. Returns a
  // sentence for stderr ("" when there was no kept file).
  std::string fail();
  bool has_previous() const { return has_prev_; }

 private:
  std::string path_, prev_;
  bool has_prev_ = false;
};

// The status a statex file records: the root attribute `status` of a results file, the /trainer
// attribute `status` of a checkpoint; "" for anything else (missing, damaged, another format).
std::string recorded_status(const std::string& path);

// Throws ConfigError naming `option` when `path` cannot be written: the directory is missing,
// not a directory or not writable, or `path` is a directory (sim/io/results_file.h).
void check_output_path(const std::string& option, const std::string& path);

}  // namespace statex
