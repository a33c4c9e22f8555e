#include "sim/sweep/local_runner.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <thread>

namespace statex::sweep {
namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double s) {
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

// fork + exec with stdout/stderr into `log`; the child gets SIGKILL if this process dies.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125);  // parent died before prctl took effect
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  // Several trainers share the cores: OpenMP threads that spin while waiting would starve the
  // other jobs. A user's explicit setting wins.
  setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  std::fprintf(stderr, "statex sweep: cannot run trainer '%s': %s\n", args[0], std::strerror(errno));
  _exit(127);
}

}  // namespace

std::vector<std::string> self_trainer_cmd() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot resolve /proc/self/exe");
  return {std::string(buf, static_cast<size_t>(n)), "train"};
}

std::vector<std::string> split_command(const std::string& cmd) {
  std::istringstream in(cmd);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  if (out.empty()) throw ConfigError("--trainer-cmd is empty");
  return out;
}

std::string describe_failure(int wstatus, const ResultProbe& probe, const std::string& log_path) {
  if (probe.state == ResultProbe::State::failed && !probe.failure_reason.empty()) return probe.failure_reason;
  std::string how;
  if (WIFSIGNALED(wstatus)) how = "killed by signal " + std::to_string(WTERMSIG(wstatus));
  else if (WEXITSTATUS(wstatus) != 0) how = "exit code " + std::to_string(WEXITSTATUS(wstatus));
  else how = std::string("exit code 0 but result is ") + state_name(probe.state);
  std::string last = last_line(log_path);
  return last.empty() ? how : how + ": " + last;
}

int run_local(const SweepDir& dir, const std::vector<Trial>& trials,
              const std::vector<std::string>& swept, const LocalOptions& opt) {
  const int jobs = opt.jobs < 1 ? 1 : opt.jobs;
  int threads = opt.threads_per_job;
  if (threads <= 0) {
    unsigned hw = std::thread::hardware_concurrency();
    threads = std::max(1, static_cast<int>(hw == 0 ? 1 : hw) / jobs);
  }
  std::vector<std::string> trainer = opt.trainer_cmd.empty() ? self_trainer_cmd() : opt.trainer_cmd;

  std::vector<TrialStatus> status(trials.size());
  std::vector<size_t> queue;
  for (size_t i = 0; i < trials.size(); ++i) {
    const std::string result = dir.result(trials[i].id);
    ResultProbe p = probe_result(result);
    if (p.state == ResultProbe::State::completed) {
      status[i].status = "completed";
      continue;
    }
    queue.push_back(i);
    if (p.damaged) {
      // Not taken for a finished trial, and not deleted either: kept beside for inspection.
      std::rename(result.c_str(), (result + ".damaged").c_str());
      status[i].error = "results file was damaged (" + p.detail + "), kept as " +
                        SweepDir::result_relpath(trials[i].id) + ".damaged; rerun";
      if (!opt.quiet)
        std::fprintf(stderr, "[sweep] trial %s: %s\n", trials[i].id.c_str(),
                     status[i].error.c_str());
    }
  }
  const size_t skipped = trials.size() - queue.size();
  dir.write_index(trials, swept, status);

  size_t next = 0, done = 0, failed = 0;
  std::map<pid_t, std::pair<size_t, Clock::time_point>> running;
  double busy_seconds = 0;  // summed wall time of trials finished in this session
  auto progress = [&] {
    if (opt.quiet) return;
    size_t left = queue.size() - done - failed;  // includes running
    std::string eta = "?";
    if (done + failed > 0) {
      double per = busy_seconds / static_cast<double>(done + failed);
      eta = format_duration(per * static_cast<double>(left) / jobs);
    }
    std::fprintf(stderr, "[sweep] %zu/%zu done, %zu running, %zu failed, %zu pending, ETA %s\n",
                 skipped + done, trials.size(), running.size(), failed,
                 queue.size() - next, left == 0 ? "0s" : eta.c_str());
  };
  if (!opt.quiet)
    std::fprintf(stderr, "[sweep] %zu trials, %zu already completed, %zu to run (%d jobs x %d threads)\n",
                 trials.size(), skipped, queue.size(), jobs, threads);

  // A runner that stops on an error (a full disk when it rewrites index.csv, a failed fork) must
  // not leave rows saying "running" behind: its trainers are stopped (they would die with it
  // anyway) and their rows go back to pending, written even on a full disk.
  try {
  while (next < queue.size() || !running.empty()) {
    while (next < queue.size() && static_cast<int>(running.size()) < jobs) {
      size_t i = queue[next++];
      const std::string& id = trials[i].id;
      // A stale partial or failed file from an earlier attempt must not be mistaken for output.
      unlink(dir.result(id).c_str());
      unlink((dir.result(id) + ".tmp").c_str());
      std::vector<std::string> argv = trainer;
      argv.insert(argv.end(), {"--config", dir.ini(id), "--out", dir.result(id), "--train.threads", std::to_string(threads)});
      pid_t pid = spawn(argv, dir.log(id));
      running[pid] = {i, Clock::now()};
      status[i].status = "running";
      status[i].error.clear();
      dir.write_index(trials, swept, status);
      progress();
    }
    int ws = 0;
    pid_t pid = waitpid(-1, &ws, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("waitpid failed: ") + std::strerror(errno));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;  // not ours
    auto [i, start] = it->second;
    running.erase(it);
    busy_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    const std::string& id = trials[i].id;
    ResultProbe p = probe_result(dir.result(id));
    bool ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && p.state == ResultProbe::State::completed;
    if (ok) {
      status[i] = {"completed", ""};
      ++done;
    } else {
      status[i] = {"failed", describe_failure(ws, p, dir.log(id))};
      ++failed;
      if (!opt.quiet) std::fprintf(stderr, "[sweep] trial %s failed: %s\n", id.c_str(), status[i].error.c_str());
    }
    dir.write_index(trials, swept, status);
    progress();
  }
  } catch (const std::exception& e) {
    for (auto& [pid, what] : running) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      TrialStatus& st = status[what.first];
      st.status = "pending";
      st.error = std::string("stopped: the sweep runner failed (") + e.what() + "); rerun";
    }
    for (TrialStatus& st : status)
      if (st.status == "running") st.status = "pending";
    const std::string why = dir.write_index_last_resort(trials, swept, status);
    if (!why.empty())
      std::fprintf(stderr, "[sweep] warning: index.csv could not be updated (%s): rows may say "
                   "running; the next statex sweep / --collect rebuilds it from the results\n",
                   why.c_str());
    throw;
  }
  return static_cast<int>(failed);
}

}  // namespace statex::sweep
