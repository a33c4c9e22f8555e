// Output path guards: see output_guard.h.
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "sim/core/config.h"
#include "sim/io/h5.h"

namespace statex {
namespace {

bool path_exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

}  // namespace

std::string resolve_path(const std::string& path) {
  if (path.empty()) return path;
  std::string r = real(path);
  if (!r.empty()) return r;
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string rdir = real(dir);
  if (rdir.empty()) return path;
  return (rdir == "/" ? "" : rdir) + "/" + name;
}

void check_distinct_paths(const std::vector<PathArg>& args,
                          const std::vector<std::pair<std::string, std::string>>& allowed) {
  auto is_allowed = [&](const std::string& a, const std::string& b) {
    for (auto& [x, y] : allowed)
      if ((x == a && y == b) || (x == b && y == a)) return true;
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].path.empty()) continue;
    std::string ri = resolve_path(args[i].path);
    for (size_t j = i + 1; j < args.size(); ++j) {
      if (args[j].path.empty() || !(args[i].output || args[j].output)) continue;
      if (resolve_path(args[j].path) != ri || is_allowed(args[i].option, args[j].option)) continue;
      const PathArg& out = args[j].output ? args[j] : args[i];
      const PathArg& other = args[j].output ? args[i] : args[j];
      throw ConfigError(out.option + " '" + out.path + "' is the same file as " + other.option +
                        " '" + other.path + "'" + (other.output ? "" : " (an input)") +
                        "; writing it would destroy that file: choose another " + out.option);
    }
  }
}

void require_output_path(const std::string& option, const std::string& path) {
  if (path.empty())
    throw ConfigError(option + " is empty: give the path of the file to write");
}

void refuse_existing(const std::string& option, const std::string& path, bool overwrite) {
  if (overwrite) return;
  if (path_exists(path))
    throw ConfigError(option + " '" + path + "' already exists; pass --overwrite to replace it, " +
                      "or choose another path");
  if (path_exists(path + ".prev"))
    throw ConfigError(option + " '" + path + "': '" + path + ".prev' holds the file an " +
                      "unfinished run replaced there (kept until a run at '" + path +
                      "' completes); pass --overwrite to start a new run there (the kept file " +
                      "stays until it completes), or choose another path");
}

void check_output_path(const std::string& option, const std::string& path) {
  require_output_path(option, path);
  check_writable(path, option);
}

OutputLock::OutputLock(const std::string& option, const std::string& path)
    : lock_path_(resolve_path(path) + ".lock") {
  // Retry when the lock file was removed and recreated between our open and flock.
  for (int attempt = 0; attempt < 10; ++attempt) {
    int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      check_writable(path, option);  // names a missing or unwritable directory as such
      throw ConfigError(option + " '" + path + "': cannot create the lock file '" + lock_path_ +
                        "': " + std::strerror(err));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      throw ConfigError(option + " '" + path + "' is being written by another statex process " +
                        "(lock " + lock_path_ + "); wait for it or choose another path");
    }
    struct stat held {}, now {};
    if (fstat(fd, &held) == 0 && stat(lock_path_.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev) {
      fd_ = fd;
      return;
    }
    ::close(fd);
  }
  throw ConfigError(option + " '" + path + "': cannot take the lock '" + lock_path_ + "'");
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());  // while still held: a waiter re-checks the inode
  ::close(fd_);
}

namespace {

bool same_file(const std::string& a, const std::string& b) {
  struct stat x {}, y {};
  return stat(a.c_str(), &x) == 0 && stat(b.c_str(), &y) == 0 && x.st_ino == y.st_ino &&
         x.st_dev == y.st_dev;
}

// Makes `to` a hard link of `from`, atomically: `to` names either its old file or `from`'s,
// never nothing, whenever the process dies.
void link_atomically(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".tmp";
  ::unlink(tmp.c_str());
  if (::link(from.c_str(), tmp.c_str()) != 0 || std::rename(tmp.c_str(), to.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot keep a copy of '" + from + "' as '" + to + "' before " +
                             "replacing it: " + std::strerror(err));
  }
}

}  // namespace

std::string recorded_status(const std::string& path) {
  try {
    h5::Handle f = h5::open_file(path);  // integrity checked: a damaged file records nothing
    if (!h5::has_attr(f, "format")) return "";
    const std::string format = h5::read_attr_str(f, "format");
    if (format == "statex-sim results") return h5::read_attr_str(f, "status");
    if (format == "statex-sim checkpoint" && h5::exists(f, "trainer")) {
      h5::Handle t = h5::open_group(f, "trainer");
      return h5::has_attr(t, "status") ? h5::read_attr_str(t, "status") : "";
    }
  } catch (const std::exception&) {
  }
  return "";
}

ReplacedFile::ReplacedFile(const std::string& path, Mode mode)
    : path_(path), prev_(path + ".prev") {
  const bool here = path_exists(path_), kept = path_exists(prev_);
  if (here && !(kept && same_file(path_, prev_))) {
    // The file at `path` becomes the kept one when it is completed (it is newer than any kept
    // file), or, for a new run, when nothing is kept yet (the older file of any kind). A kept
    // file next to an unfinished record stays: that record is what this run replaces.
    const bool completed = recorded_status(path_) == "completed";
    if (completed || (!kept && mode == Mode::replace)) link_atomically(path_, prev_);
  }
  has_prev_ = path_exists(prev_);
}

void ReplacedFile::complete() {
  if (has_prev_) ::unlink(prev_.c_str());
  has_prev_ = false;
}

std::string ReplacedFile::fail() {
  if (!has_prev_ || !path_exists(prev_)) return "";
  if (same_file(path_, prev_)) {  // the run failed before writing anything: the file is in place
    ::unlink(prev_.c_str());
    has_prev_ = false;
    return "";
  }
  const std::string failed = path_ + ".failed";
  const bool moved = !path_exists(path_) || std::rename(path_.c_str(), failed.c_str()) == 0;
  if (!moved || std::rename(prev_.c_str(), path_.c_str()) != 0)
    return "the earlier file is kept as '" + prev_ + "'";
  has_prev_ = false;
  return "the earlier file '" + path_ + "' was put back; this run's record is '" + failed + "'";
}

std::unique_ptr<OutputLock> guard_output(std::vector<PathArg> inputs,
                                         const std::string& out_option, const std::string& out,
                                         bool overwrite) {
  require_output_path(out_option, out);
  inputs.push_back({out_option, out, true});
  check_distinct_paths(inputs);
  check_writable(out, out_option);
  auto lock = std::make_unique<OutputLock>(out_option, out);
  refuse_existing(out_option, out, overwrite);
  return lock;
}

}  // namespace statex
