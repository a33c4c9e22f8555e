// Property test of the overwrite / rollback protocol (sim/io/output_guard.h, docs/exit_codes.md):
// **a completed file is never lost**. Random sequences of real `statex train` runs on one --out
// and one --checkpoint-out -- runs that complete, fail (non-finite loss: exit 5; a full disk:
// exit 1), are killed with SIGKILL or SIGTERM at a random moment, resume an unfinished run, with
// or without --overwrite -- and after every run of every sequence:
//   - the most recently completed run's results are at --out or --out.prev, intact, status
//     completed, and the same for its final checkpoint at --checkpoint-out or its .prev;
//   - a run that exits 0 leaves its own completed files and no .prev;
//   - a failed run (exit 5 / 1) puts the completed files back at their paths;
//   - a refused run (exit 2) changes no file;
//   - every file at those four paths is a whole, readable statex file.
// 4 shards x 52 sequences = 208 sequences of 1-4 runs (tiny model, 2 steps: a run is a process
// start plus a few file writes). A failure prints the sequence that broke the invariant;
// STATEX_PROPERTY_SEED=N reruns a shard's sequences from another seed.
#include <signal.h>

#include <chrono>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/io/results_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

// What one of the four paths holds.
struct Seen {
  bool exists = false, readable = false;
  std::string status;  // results: status; checkpoint: /trainer status
  uint64_t seed = 0;   // train.seed of the run that wrote it
  std::string error;
  bool completed(uint64_t s) const { return readable && status == "completed" && seed == s; }
};

Seen see_results(const std::string& p) {
  Seen s;
  if (!exists(p)) return s;
  s.exists = true;
  try {
    RunRecord r = read_results(p);
    s.readable = true;
    s.status = r.status;
    s.seed = r.param_seed;
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  return s;
}

Seen see_checkpoint(const std::string& p) {
  Seen s;
  if (!exists(p)) return s;
  s.exists = true;
  try {
    Checkpoint ck = load_checkpoint(p);
    if (!ck.trainer) throw std::runtime_error("no trainer state");
    s.seed = std::stoull(config_values_from_ini(ck.trainer->config_ini).at("train.seed"));
    s.status = ck.trainer->status;
    s.readable = true;
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  return s;
}

std::string describe(const char* name, const Seen& s) {
  std::ostringstream o;
  o << name << ": ";
  if (!s.exists) o << "absent";
  else if (!s.readable) o << "UNREADABLE (" << s.error << ")";
  else o << s.status << " seed " << s.seed;
  return o.str();
}

enum class Kind { complete, fail_loss, fail_disk, kill, term, resume };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::complete: return "complete";
    case Kind::fail_loss: return "fail(loss)";
    case Kind::fail_disk: return "fail(disk)";
    case Kind::kill: return "SIGKILL";
    case Kind::term: return "SIGTERM";
    case Kind::resume: return "resume";
  }
  return "?";
}

class OverwriteProtocol : public Attack, public ::testing::WithParamInterface<int> {
 protected:
  std::string P() const { return path("r.h5"); }
  std::string C() const { return path("ck.h5"); }

  V args_of(uint64_t seed) const {
    return V{"train"} + tiny({{"train.seed", std::to_string(seed)},
                              {"train.steps", "2"},
                              {"train.eval_every", "1"},
                              {"train.checkpoint_every", "1"}}) +
           V{"--out", P(), "--checkpoint-out", C()};
  }

  // Runs one process, killing it after `kill_after` seconds with `sig` (0: never).
  int run_one(const V& args, int sig, double kill_after, long fsize) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(path("run.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      exec_statex(args, RunOptions{"", fsize});
    }
    if (sig != 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(kill_after));
      kill(pid, sig);
    }
    return wait_exit(pid);
  }
};

TEST_P(OverwriteProtocol, ACompletedFileIsNeverLost) {
  uint64_t base = 31;
  if (const char* e = std::getenv("STATEX_PROPERTY_SEED")) base = std::stoull(e);
  std::mt19937_64 rng(base * 1000 + GetParam());
  double run_s = 0.1;  // running mean of a completed run's wall time (kill moments scale with it)
  int kills_landed = 0, completed = 0, failed = 0, refused_runs = 0, resumed = 0;
  const int kSequences = 52;
  uint64_t next_seed = 1;
  for (int seq = 0; seq < kSequences; ++seq) {
    for (const char* f : {"r.h5", "r.h5.prev", "r.h5.failed", "ck.h5", "ck.h5.prev",
                          "ck.h5.failed", "run.log"})
      ::unlink(path(f).c_str());
    std::optional<uint64_t> want_results, want_ck;  // seed of the last completed run
    std::vector<std::string> history;
    const int runs = 1 + int(rng() % 4);
    for (int i = 0; i < runs; ++i) {
      Kind kind = Kind(rng() % 5);
      const bool overwrite = rng() % 4 != 0;
      // A resume continues the unfinished run whose checkpoint is at --checkpoint-out (half the
      // time when there is one).
      Seen ck_now = see_checkpoint(C());
      if (ck_now.readable && ck_now.status != "completed" && rng() % 2 == 0) kind = Kind::resume;
      const uint64_t seed = kind == Kind::resume ? ck_now.seed : next_seed++;
      resumed += kind == Kind::resume;
      V a = args_of(seed);
      if (kind == Kind::resume) a = a + V{"--resume", C()};
      if (kind == Kind::fail_loss)
        a = a + V{"--train.lr", "1e30", "--train.grad_clip", "0"};
      if (overwrite) a = a + V{"--overwrite"};
      const int sig = kind == Kind::kill ? SIGKILL : kind == Kind::term ? SIGTERM : 0;
      std::uniform_real_distribution<double> moment(0.0, 1.3 * run_s);
      const double at = moment(rng);
      const long fsize = kind == Kind::fail_disk ? 16 * 1024 : -1;

      auto before = snapshot(dir());
      auto t0 = std::chrono::steady_clock::now();
      const int code = run_one(a, sig, at, fsize);
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (code == 0 && sig == 0) run_s = 0.8 * run_s + 0.2 * took;

      std::ostringstream step;
      step << "run " << i << ": " << kind_name(kind) << " seed " << seed
           << (overwrite ? " --overwrite" : "");
      if (sig) step << " signal after " << at << " s";
      step << " -> exit " << code;
      history.push_back(step.str());

      const Seen r = see_results(P()), rp = see_results(P() + ".prev");
      const Seen k = see_checkpoint(C()), kp = see_checkpoint(C() + ".prev");
      std::string trace;
      for (auto& h : history) trace += "  " + h + "\n";
      trace += "  now " + describe("r.h5", r) + "; " + describe("r.h5.prev", rp) + "; " +
               describe("ck.h5", k) + "; " + describe("ck.h5.prev", kp) + "\n" +
               read_bytes(path("run.log"));
      SCOPED_TRACE("sequence " + std::to_string(seq) + " (seed " + std::to_string(base) +
                   ", shard " + std::to_string(GetParam()) + "):\n" + trace);

      // Whatever is at the four paths is a whole statex file.
      for (const Seen* s : {&r, &rp, &k, &kp}) ASSERT_TRUE(!s->exists || s->readable);

      if (code == 0) {
        ++completed;
        ASSERT_TRUE(r.completed(seed) && k.completed(seed)) << "exit 0 without its files";
        ASSERT_FALSE(rp.exists || kp.exists) << "a completed run left a .prev";
        want_results = want_ck = seed;
        continue;
      }
      if (code == 2) {
        ++refused_runs;
        // Lock files (a killed run leaves its own; the kernel dropped the lock) are no data.
        auto data = [](std::map<std::string, std::string> files) {
          for (auto it = files.begin(); it != files.end();)
            it = it->first == "run.log" || (it->first.size() > 5 &&
                                             it->first.compare(it->first.size() - 5, 5, ".lock") == 0)
                     ? files.erase(it)
                     : std::next(it);
          return files;
        };
        ASSERT_EQ(data(snapshot(dir())), data(before)) << "a refused run changed files";
        continue;
      }
      if (code == 5 || code == 1) {
        ++failed;
        if (want_results) {
          ASSERT_TRUE(r.completed(*want_results)) << "results not put back";
        }
        if (want_ck) {
          ASSERT_TRUE(k.completed(*want_ck)) << "checkpoint not put back";
        }
        continue;
      }
      // Killed, or interrupted (75): the last completed files, or this run's if it completed
      // before the signal landed, are at the path or its .prev.
      ++kills_landed;
      if (r.completed(seed) || rp.completed(seed)) want_results = seed;
      if (k.completed(seed) || kp.completed(seed)) want_ck = seed;
      if (want_results) {
        ASSERT_TRUE(r.completed(*want_results) || rp.completed(*want_results))
            << "the completed results are lost";
      }
      if (want_ck) {
        ASSERT_TRUE(k.completed(*want_ck) || kp.completed(*want_ck))
            << "the completed checkpoint is lost";
      }
    }
  }
  // The sequences must have exercised every outcome.
  EXPECT_GT(completed, 5);
  EXPECT_GT(failed, 5);
  EXPECT_GT(kills_landed, 5);
  EXPECT_GT(refused_runs, 0);
  EXPECT_GT(resumed, 0);
  std::printf("shard %d: %d completed, %d failed, %d killed or interrupted, %d resumes, "
              "%d refused\n", GetParam(), completed, failed, kills_landed, resumed, refused_runs);
}
INSTANTIATE_TEST_SUITE_P(Shards, OverwriteProtocol, ::testing::Values(0, 1, 2, 3));

}  // namespace
}  // namespace statex::cli_test
