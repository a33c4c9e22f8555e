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

// Throws ConfigError when `path` exists and `overwrite` is false.
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

// Keeps the file that a new run replaces: the constructor hard-links an existing `path` to
// "<path>.prev" (the atomic writers then replace `path` without touching that inode). complete()
// drops the copy; fail() moves the failed run's file to "<path>.failed" and puts the old file
// back. With adopt_only (a --resume), an existing "<path>.prev" from the interrupted run is kept
// and nothing new is linked.
class ReplacedFile {
 public:
  ReplacedFile(const std::string& path, bool adopt_only);
  void complete();
  // Returns a sentence for stderr ("" when there was no earlier file).
  std::string fail();
  bool has_previous() const { return has_prev_; }

 private:
  std::string path_, prev_;
  bool has_prev_ = false;
};

}  // namespace statex
