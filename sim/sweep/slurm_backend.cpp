#include "sim/sweep/slurm_backend.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "sim/sweep/local_runner.h"

namespace statex::sweep {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::pair<std::string, std::string>> read_jobs(const SweepDir& dir) {
  std::vector<std::pair<std::string, std::string>> jobs;
  std::istringstream in(read_file(dir.root() + "/slurm/jobs.tsv"));
  std::string job, list;
  while (in >> job >> list) jobs.emplace_back(job, list);
  return jobs;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(path));
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) lines.push_back(l);
  return lines;
}

// Array task indices of `job` that squeue still lists (pending or running).
std::vector<int> active_tasks(const std::string& job) {
  int rc = 0;
  std::string out = run_capture({"squeue", "-h", "-r", "-j", job, "-o", "%K"}, &rc);
  std::vector<int> tasks;
  if (rc != 0) {
    if (out.find("Invalid job id") != std::string::npos) return tasks;  // finished and purged
    throw std::runtime_error("squeue failed (exit " + std::to_string(rc) + "): " + out);
  }
  std::istringstream in(out);
  std::string tok;
  while (in >> tok) {
    char* end = nullptr;
    long v = std::strtol(tok.c_str(), &end, 10);
    if (end != tok.c_str() && *end == '\0') tasks.push_back(static_cast<int>(v));
  }
  return tasks;
}

std::string sbatch_script(const SweepDir& dir, const std::string& name, const SlurmOptions& opt,
                          const std::vector<std::string>& trainer) {
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Written by statex sweep; one array task = one trial. Usage: sbatch --array=0-N array.sbatch LIST\n"
    << "#SBATCH --job-name=" << "statex-" << name << "\n"
    << "#SBATCH --cpus-per-task=" << opt.cpus << "\n";
  if (!opt.mem.empty()) s << "#SBATCH --mem=" << opt.mem << "\n";
  if (!opt.time.empty()) s << "#SBATCH --time=" << opt.time << "\n";
  if (!opt.partition.empty()) s << "#SBATCH --partition=" << opt.partition << "\n";
  if (!opt.gres.empty()) s << "#SBATCH --gres=" << opt.gres << "\n";
  // Requeue: Slurm sends SIGTERM to this script 120 s before the time limit (--signal=B:...)
  // or on preemption; the script passes it to the trainer, which writes its checkpoint and exits
  // with 75 (interrupted); the script then requeues the task, which resumes from the checkpoint.
  s << "#SBATCH --output=" << dir.root() << "/slurm/%A_%a.out\n"
    << "#SBATCH --open-mode=append\n"
    << "#SBATCH --requeue\n"
    << "#SBATCH --signal=B:TERM@120\n"
    << "set -u\n"
    << "LIST=\"$1\"\n"
    << "ID=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$LIST\")\n"
    << "if [ -z \"$ID\" ]; then echo \"no trial for task $SLURM_ARRAY_TASK_ID in $LIST\" >&2; exit 2; fi\n"
    << "DIR=" << shell_quote(dir.root() + "/trials") << "\n"
    << "CK=\"$DIR/$ID.ck.h5\"\n"
    << "echo \"task $SLURM_ARRAY_TASK_ID -> trial $ID on $(hostname) (restart ${SLURM_RESTART_COUNT:-0})\"\n"
    << "if [ -s \"$CK\" ]; then\n"
    << "  RESUME=(--resume \"$CK\"); echo \"resuming from $CK\" >> \"$DIR/$ID.log\"\n"
    << "else\n"
    << "  RESUME=(); rm -f \"$DIR/$ID.h5\" \"$DIR/$ID.h5.tmp\" \"$DIR/$ID.log\"\n"
    << "fi\n";
  for (auto& a : trainer) s << (&a == &trainer.front() ? "" : " ") << shell_quote(a);
  s << " --config \"$DIR/$ID.ini\" --out \"$DIR/$ID.h5\" --checkpoint-out \"$CK\" \"${RESUME[@]}\""
    << " --train.threads \"${SLURM_CPUS_PER_TASK:-1}\" >> \"$DIR/$ID.log\" 2>&1 &\n"
    << "PID=$!\n"
    << "trap 'kill -TERM $PID 2>/dev/null' TERM INT\n"
    << "wait $PID; RC=$?\n"
    << "while kill -0 $PID 2>/dev/null; do wait $PID; RC=$?; done  # wait returns early on a trap\n"
    << "if [ $RC -eq 75 ]; then\n"
    << "  echo \"trial $ID interrupted (exit 75): requeueing job $SLURM_JOB_ID\"\n"
    << "  scontrol requeue \"$SLURM_JOB_ID\"\n"
    << "fi\n"
    << "exit $RC\n";
  return s.str();
}

}  // namespace

std::string run_capture(const std::vector<std::string>& argv, int* exit_code) {
  int out_pipe[2];
  if (pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(out_pipe[1], 2);  // merged: error messages end up in the text we report
    close(out_pipe[0]);
    close(out_pipe[1]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run '%s': %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(out_pipe[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  close(out_pipe[0]);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  int rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  if (exit_code) {
    *exit_code = rc;
  } else if (rc != 0) {
    throw std::runtime_error("'" + argv[0] + "' failed (exit " + std::to_string(rc) + "): " + out);
  }
  return out;
}

std::set<std::string> active_trials(const SweepDir& dir) {
  std::set<std::string> ids;
  for (auto& [job, list] : read_jobs(dir)) {
    std::vector<int> tasks = active_tasks(job);
    if (tasks.empty()) continue;
    std::vector<std::string> lines = read_lines(list);
    for (int t : tasks)
      if (t >= 0 && t < static_cast<int>(lines.size())) ids.insert(lines[static_cast<size_t>(t)]);
  }
  return ids;
}

std::string submit_array(const SweepDir& dir, const std::string& sweep_name,
                         const std::vector<Trial>& trials, const SlurmOptions& opt) {
  make_dirs(dir.root() + "/slurm");
  std::set<std::string> active = active_trials(dir);
  std::vector<std::string> pending;
  for (auto& t : trials) {
    if (active.count(t.id)) continue;
    if (probe_result(dir.result(t.id)).state == ResultProbe::State::completed) continue;
    pending.push_back(t.id);
  }
  std::fprintf(stderr, "[sweep] %zu trials: %zu in Slurm already, %zu to submit\n", trials.size(),
               active.size(), pending.size());
  if (pending.empty()) return "";

  std::vector<std::string> trainer = opt.trainer_cmd.empty() ? self_trainer_cmd() : opt.trainer_cmd;
  std::string script = dir.root() + "/slurm/array.sbatch";
  write_file_atomically(script, sbatch_script(dir, sweep_name, opt, trainer));
  // One list per submission; tasks of earlier arrays may still be reading theirs.
  std::string list_tmp = dir.root() + "/slurm/list-" + std::to_string(read_jobs(dir).size() + 1) + ".list";
  std::string list_text;
  for (auto& id : pending) list_text += id + "\n";
  write_file_atomically(list_tmp, list_text);
  for (auto& id : pending) {  // an old failed or partial file must not pass for this run's result
    std::remove(dir.result(id).c_str());
    std::remove((dir.result(id) + ".tmp").c_str());
  }

  std::string array = "--array=0-" + std::to_string(pending.size() - 1);
  if (opt.throttle > 0) array += "%" + std::to_string(opt.throttle);
  std::string out = run_capture({"sbatch", "--parsable", array, script, list_tmp});
  std::string job = out.substr(0, out.find_first_of(";\n"));
  if (job.empty()) throw std::runtime_error("sbatch printed no job id: " + out);
  // The tasks read the list by the path given to sbatch, so keep that file; record the job.
  std::ofstream(dir.root() + "/slurm/jobs.tsv", std::ios::app) << job << "\t" << list_tmp << "\n";
  std::fprintf(stderr, "[sweep] submitted job array %s (%zu tasks)\n", job.c_str(), pending.size());
  return job;
}

std::vector<TrialStatus> collect(const SweepDir& dir, const std::vector<Trial>& trials) {
  std::set<std::string> active = active_trials(dir);
  std::vector<TrialStatus> status;
  for (auto& t : trials) {
    ResultProbe p = probe_result(dir.result(t.id));
    TrialStatus s = status_from_probe(p);
    if (active.count(t.id)) {  // queued or running again: an old file says nothing
      s = {"running", ""};
    } else if (s.status == "pending" && file_exists(dir.log(t.id))) {
      s.status = "failed";
      std::string last = last_line(dir.log(t.id));
      s.error = std::string("no completed result (") + state_name(p.state) + ")" +
                (last.empty() ? "" : ": " + last);
    }
    status.push_back(s);
  }
  return status;
}

void wait_for_arrays(const SweepDir& dir, const std::vector<Trial>& trials, double poll_seconds) {
  std::string last_msg;
  while (true) {
    std::set<std::string> active = active_trials(dir);
    size_t done = 0, failed = 0;
    for (auto& t : trials) {
      auto st = probe_result(dir.result(t.id)).state;
      done += st == ResultProbe::State::completed;
      failed += st == ResultProbe::State::failed;
    }
    char msg[160];
    std::snprintf(msg, sizeof msg, "[sweep] slurm: %zu/%zu done, %zu queued or running, %zu failed",
                  done, trials.size(), active.size(), failed);
    if (msg != last_msg) std::fprintf(stderr, "%s\n", msg);
    last_msg = msg;
    if (active.empty()) return;
    std::this_thread::sleep_for(std::chrono::duration<double>(poll_seconds));
  }
}

}  // namespace statex::sweep
