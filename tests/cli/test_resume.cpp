// Attack: interruptions. kill -9 twenty times at random moments and --resume; SIGTERM / SIGINT
// end a run cleanly (checkpoint, status interrupted, exit 75); a resume with changed options is
// refused, or, for the options that may change, recorded. The final results must equal those of
// an uninterrupted run: every curve step once, same values, same parameters.
#include <signal.h>

#include <chrono>
#include <random>
#include <thread>

#include "sim/io/checkpoint.h"
#include "sim/io/results_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

// A run long enough to be interrupted (a few hundred small steps), checkpointing every 5.
V long_run(std::map<std::string, std::string> over = {}) {
  std::map<std::string, std::string> o = {{"train.steps", "300"},
                                          {"mqar.train", "16:2:3000"},
                                          {"train.batch_size", "8"},
                                          {"train.eval_every", "25"},
                                          {"train.checkpoint_every", "5"}};
  for (auto& [k, v] : over) o[k] = v;
  return V{"train"} + tiny(o);
}

// Same curve (every step once, same values), evals, counters and expansion as `ref`.
void expect_same_record(const RunRecord& got, const RunRecord& ref) {
  EXPECT_EQ(got.status, "completed");
  ASSERT_EQ(got.curve.size(), ref.curve.size());
  for (size_t i = 0; i < ref.curve.size(); ++i) {
    ASSERT_EQ(got.curve[i].step, int64_t(i + 1)) << "curve row " << i;
    EXPECT_EQ(got.curve[i].loss, ref.curve[i].loss) << "step " << i + 1;
    EXPECT_EQ(got.curve[i].lr, ref.curve[i].lr) << "step " << i + 1;
    EXPECT_EQ(got.curve[i].grad_norm, ref.curve[i].grad_norm) << "step " << i + 1;
  }
  ASSERT_EQ(got.evals.size(), ref.evals.size());
  for (size_t i = 0; i < ref.evals.size(); ++i) {
    EXPECT_EQ(got.evals[i].step, ref.evals[i].step);
    EXPECT_EQ(got.evals[i].accuracy, ref.evals[i].accuracy);
    EXPECT_EQ(got.evals[i].loss, ref.evals[i].loss);
  }
  EXPECT_EQ(got.steps_done, ref.steps_done);
  EXPECT_EQ(got.tokens_seen, ref.tokens_seen);
}

void expect_same_weights(const std::string& ck, const std::string& ref_ck) {
  Checkpoint a = load_checkpoint(ck), b = load_checkpoint(ref_ck);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.exp_avg, b.exp_avg);
  EXPECT_EQ(a.exp_avg_sq, b.exp_avg_sq);
}

// Waits until the results file at `out` records at least `steps` steps (the trainer writes it
// at every eval and checkpoint).
bool wait_for_steps(const std::string& out, int64_t steps, pid_t pid) {
  for (int i = 0; i < 3000; ++i) {
    try {
      if (exists(out) && read_results(out).curve.size() >= size_t(steps)) return true;
    } catch (const std::exception&) {
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return false;
    usleep(10000);
  }
  return false;
}

TEST_F(Attack, KillNineTwentyTimesThenResume) {
  const V args = long_run();
  auto t0 = std::chrono::steady_clock::now();
  Outcome ref = run(args + V{"--out", path("ref.h5"), "--checkpoint-out", path("ref_ck.h5")});
  ASSERT_EQ(ref.code, 0) << ref.out;
  const double ref_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const std::string out = path("r.h5"), ck = path("ck.h5");
  std::mt19937 rng(20);
  // Kill moments spread over the run: each attempt gets a random slice of about 1/15 of it.
  std::uniform_real_distribution<double> delay(0.0, ref_s / 15.0);
  int kills = 0, attempts = 0;
  while (kills < 20 && attempts < 200) {
    ++attempts;
    V a = args + V{"--out", out, "--checkpoint-out", ck};
    if (exists(ck)) a = a + V{"--resume", ck};
    else if (exists(out)) a = a + V{"--overwrite"};
    pid_t pid = spawn(a, path("attempt.log"));
    std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
    kill(pid, SIGKILL);
    int code = wait_exit(pid);
    if (code == 128 + SIGKILL) {
      ++kills;
      continue;
    }
    ASSERT_EQ(code, 0) << read_bytes(path("attempt.log"));
    break;  // finished before the kill landed
  }
  EXPECT_EQ(kills, 20) << "the run finished after " << kills << " kills";
  if (read_results(out).status != "completed") {
    V a = args + V{"--out", out, "--checkpoint-out", ck};
    if (exists(ck)) a = a + V{"--resume", ck};
    else a = a + V{"--overwrite"};
    Outcome last = run(a);
    ASSERT_EQ(last.code, 0) << last.out;
  }
  RunRecord got = read_results(out), want = read_results(path("ref.h5"));
  expect_same_record(got, want);
  expect_same_weights(ck, path("ref_ck.h5"));
  EXPECT_FALSE(got.resume_log.empty());
  EXPECT_FALSE(exists(out + ".prev"));
}

class Interrupt : public Attack, public ::testing::WithParamInterface<int> {};

TEST_P(Interrupt, EndsCleanlyAndResumesExactly) {
  const int sig = GetParam();
  const V args = long_run();
  ASSERT_EQ(run(args + V{"--out", path("ref.h5"), "--checkpoint-out", path("ref_ck.h5")}).code, 0);
  pid_t pid = spawn(args + V{"--out", path("r.h5"), "--checkpoint-out", path("ck.h5")},
                    path("run.log"));
  ASSERT_TRUE(wait_for_steps(path("r.h5"), 20, pid)) << read_bytes(path("run.log"));
  kill(pid, sig);
  EXPECT_EQ(wait_exit(pid), 75) << read_bytes(path("run.log"));
  RunRecord mid = read_results(path("r.h5"));
  EXPECT_EQ(mid.status, "interrupted");
  EXPECT_CONTAINS(mid.failure_reason, sig == SIGTERM ? "SIGTERM at step " : "SIGINT at step ");
  EXPECT_CONTAINS(mid.failure_reason, std::to_string(mid.steps_done));
  EXPECT_EQ(load_checkpoint(path("ck.h5")).step, mid.steps_done) << "no final checkpoint";
  EXPECT_LT(mid.steps_done, 300);

  Outcome resumed = run(args + V{"--out", path("r.h5"), "--checkpoint-out", path("ck.h5"), "--resume",
                             path("ck.h5")});
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  expect_same_record(read_results(path("r.h5")), read_results(path("ref.h5")));
  expect_same_weights(path("ck.h5"), path("ref_ck.h5"));
}
INSTANTIATE_TEST_SUITE_P(Signals, Interrupt, ::testing::Values(SIGTERM, SIGINT));

TEST_F(Attack, SigtermWithoutCheckpointSaysSo) {
  pid_t pid = spawn(long_run() + V{"--out", path("r.h5")}, path("run.log"));
  ASSERT_TRUE(wait_for_steps(path("r.h5"), 1, pid)) << read_bytes(path("run.log"));
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 75);
  RunRecord r = read_results(path("r.h5"));
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_CONTAINS(r.failure_reason, "cannot be resumed");
}

class ResumeCase : public Attack {
 protected:
  // A finished 20-step run and its checkpoint, to be resumed into a new results file.
  void SetUp() override {
    Attack::SetUp();
    ASSERT_EQ(run(long_run({{"train.steps", "20"}}) +
                  V{"--out", path("half.h5"), "--checkpoint-out", path("half_ck.h5")})
                  .code,
              0);
  }
};

TEST_F(ResumeCase, ChangedLearningRateRefused) {
  refused(long_run({{"train.steps", "20"}, {"train.lr", "0.02"}}) +
              V{"--resume", path("half_ck.h5"), "--out", path("new.h5")},
          2, {"train.lr: 0.01 -> 0.02", "--init-from"});
}

TEST_F(ResumeCase, ChangedDataSeedRefused) {
  refused(long_run({{"train.steps", "20"}, {"mqar.seed", "4"}}) +
              V{"--resume", path("half_ck.h5"), "--out", path("new.h5")},
          2, {"mqar.seed: 1 -> 4"});
}

TEST_F(ResumeCase, AllowedChangeIsListed) {
  Outcome r = run(long_run({{"train.steps", "20"}, {"train.eval_every", "5"}}) +
              V{"--resume", path("half_ck.h5"), "--out", path("new.h5")});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "train.eval_every: 25 -> 5");
  EXPECT_CONTAINS(read_results(path("new.h5")).resume_log, "train.eval_every: 25 -> 5");
}

}  // namespace
}  // namespace statex::cli_test
