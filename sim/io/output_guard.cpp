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

#include "sim/core/config.h"

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
  if (overwrite || !path_exists(path)) return;
  throw ConfigError(option + " '" + path + "' already exists; pass --overwrite to replace it, or " +
                    "choose another path");
}

OutputLock::OutputLock(const std::string& option, const std::string& path)
    : lock_path_(resolve_path(path) + ".lock") {
  // Retry when the lock file was removed and recreated between our open and flock.
  for (int attempt = 0; attempt < 10; ++attempt) {
    int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw ConfigError(option + " '" + path + "': cannot create the lock file '" + lock_path_ +
                        "': " + std::strerror(errno));
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

ReplacedFile::ReplacedFile(const std::string& path, bool adopt_only)
    : path_(path), prev_(path + ".prev") {
  if (adopt_only) {
    has_prev_ = path_exists(prev_);
    return;
  }
  if (!path_exists(path_)) return;
  ::unlink(prev_.c_str());
  if (::link(path_.c_str(), prev_.c_str()) != 0)
    throw ConfigError("cannot keep a copy of '" + path_ + "' as '" + prev_ + "' before replacing " +
                      "it: " + std::strerror(errno));
  has_prev_ = true;
}

void ReplacedFile::complete() {
  if (has_prev_) ::unlink(prev_.c_str());
  has_prev_ = false;
}

std::string ReplacedFile::fail() {
  if (!has_prev_) return "";
  struct stat a {}, b {};
  if (stat(path_.c_str(), &a) == 0 && stat(prev_.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
      a.st_dev == b.st_dev) {  // the run failed before writing anything: the old file is in place
    ::unlink(prev_.c_str());
    has_prev_ = false;
    return "";
  }
  std::string failed = path_ + ".failed";
  bool moved = !path_exists(path_) || std::rename(path_.c_str(), failed.c_str()) == 0;
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
