#pragma once
// Harness of the CLI attack suite (tests/cli/*.cpp): runs the real `statex` binary ($STATEX_BIN,
// set by ctest; else next to the test binary) as a hostile user would, with argv given word by
// word (so '' and odd names reach it unchanged), and snapshots a directory byte for byte so a
// test can assert that a refused command changed no earlier file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/errors.h"
#include "tests/support/model_harness.h"

namespace statex::cli_test {

inline std::string statex_bin() {
  if (const char* b = std::getenv("STATEX_BIN")) return b;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self = n > 0 ? std::string(buf, size_t(n)) : "./test_cli_attack";
  return self.substr(0, self.rfind('/') + 1) + "statex";
}

struct Outcome {
  int code = -1;        // exit status, or 128 + signal
  bool signaled = false;
  std::string out;      // stdout and stderr together
};

struct RunOptions {
  std::string cwd;              // "" = inherit
  long max_file_bytes = -1;     // RLIMIT_FSIZE (a full disk, for the writer); SIGXFSZ ignored
};

inline void exec_statex(const std::vector<std::string>& args, const RunOptions& o) {
  if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) _exit(126);
  if (o.max_file_bytes >= 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit rl{rlim_t(o.max_file_bytes), rlim_t(o.max_file_bytes)};
    setrlimit(RLIMIT_FSIZE, &rl);
  }
  setenv("OMP_NUM_THREADS", "1", 1);
  std::string bin = statex_bin();
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(bin.c_str(), argv.data());
  _exit(127);
}

// Runs statex with `args` and waits for it.
inline Outcome run(const std::vector<std::string>& args, const RunOptions& o = {}) {
  int fds[2];
  Outcome r;
  if (pipe(fds) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    exec_statex(args, o);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) r.out.append(buf, size_t(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.signaled = WIFSIGNALED(st);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// Starts statex in the background with stdout+stderr into `log`; returns its pid.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    exec_statex(args, {});
  }
  return pid;
}

// Waits for a spawned process: exit code, or 128 + signal.
inline int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Every regular file under `dir` (not recursing), name -> content.
inline std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      files[n] = read_bytes(dir + "/" + n);
    }
    closedir(d);
  }
  return files;
}

// Args of a tiny, fast, valid GLA run (D 16, V 37, T 16) with overrides.
inline std::vector<std::string> tiny(std::map<std::string, std::string> over = {}) {
  std::map<std::string, std::string> o = {
      {"model.d_model", "16"},   {"model.vocab_size", "37"}, {"model.gate_low_rank", "4"},
      {"mqar.train", "16:2:40"}, {"mqar.test", "16:2:8"},    {"train.steps", "4"},
      {"train.batch_size", "2"}, {"train.eval_every", "2"},  {"train.warmup_steps", "1"},
      {"train.threads", "1"}};
  for (auto& [k, v] : over) o[k] = v;
  std::vector<std::string> a;
  for (auto& [k, v] : o) {
    if (v == "<unset>") continue;
    a.push_back("--" + k);
    a.push_back(v);
  }
  a.push_back("--quiet");
  return a;
}

inline std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline std::string joined(const std::vector<std::string>& a) {
  std::string s;
  for (auto& w : a) s += (s.empty() ? "" : " ") + (w.empty() ? std::string("''") : w);
  return s;
}

class Attack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(statex_bin().c_str(), X_OK), 0) << "statex not found at " << statex_bin();
  }
  std::string path(const std::string& name) const { return dir_.path(name); }
  const std::string& dir() const { return dir_.dir(); }

  // A trained checkpoint of the tiny config (plus its results file name.run.h5).
  std::string checkpoint(const std::string& name = "ck.h5",
                         std::map<std::string, std::string> over = {}) {
    Outcome r = run(std::vector<std::string>{"train"} + tiny(over) +
                std::vector<std::string>{"--out", path(name + ".run.h5"), "--checkpoint-out", path(name)});
    EXPECT_EQ(r.code, 0) << r.out;
    return path(name);
  }

  // The command must exit with `code`, print every needle, and leave the test directory exactly
  // as it was (no new, changed or removed file).
  Outcome refused(const std::vector<std::string>& args, int code, const std::vector<std::string>& needles,
              const RunOptions& o = {}) {
    auto before = snapshot(dir());
    Outcome r = run(args, o);
    EXPECT_EQ(r.code, code) << "statex " << joined(args) << "\n" << r.out;
    for (auto& n : needles) EXPECT_CONTAINS(r.out, n);
    auto after = snapshot(dir());
    EXPECT_EQ(after.size(), before.size()) << "files added or removed by: statex " << joined(args);
    for (auto& [name, content] : before) {
      auto it = after.find(name);
      EXPECT_TRUE(it != after.end() && it->second == content)
          << "'" << name << "' changed by: statex " << joined(args);
    }
    return r;
  }

  testing::TempDir dir_{"statex_attack"};
};

}  // namespace statex::cli_test
