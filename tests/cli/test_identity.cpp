// Attack: files that do not belong together. A resume must continue exactly the run in its
// checkpoint: its own results file (run_uid), the token files it was trained on (content
// digests), and a checkpoint that holds a run at all (an `expand` output holds weights only).
// Each refusal exits 2, names both files and the fix, and changes nothing. Also the overwrite
// protocol's deterministic cases (the property test in test_overwrite_protocol.cpp samples them
// at random).
#include <signal.h>

#include "sim/io/checkpoint.h"
#include "sim/io/results_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

V run_args(std::map<std::string, std::string> over = {}) {
  over.emplace("train.steps", "8");
  over.emplace("train.checkpoint_every", "2");
  return V{"train"} + tiny(std::move(over));
}

TEST_F(Attack, ResumeIntoAnotherRunsResultsRefused) {
  // Run A completes; run B (same options, another seed) is stopped half way.
  ASSERT_EQ(run(run_args() + V{"--out", path("A.h5"), "--checkpoint-out", path("A_ck.h5")}).code, 0);
  ASSERT_EQ(run(run_args({{"train.seed", "5"}}) +
                V{"--out", path("B.h5"), "--checkpoint-out", path("B_ck.h5")})
                .code,
            0);
  // Resuming A's checkpoint into B's results (even with --overwrite) would merge B's curve into A.
  Outcome r = refused(run_args() + V{"--resume", path("A_ck.h5"), "--out", path("B.h5"),
                                     "--checkpoint-out", path("A_ck.h5"), "--overwrite"},
                      2, {"B.h5", "A_ck.h5", "another run", "A.h5"});
  EXPECT_CONTAINS(r.out, "run_uid");
}

TEST_F(Attack, ResumeIntoItsOwnResultsOrANewFileWorks) {
  pid_t pid = spawn(run_args({{"train.steps", "60"}, {"mqar.train", "16:2:4000"}}) +
                        V{"--out", path("A.h5"), "--checkpoint-out", path("A_ck.h5")},
                    path("a.log"));
  for (int i = 0; i < 1000 && !exists(path("A_ck.h5")); ++i) usleep(5000);
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_exit(pid), 75) << read_bytes(path("a.log"));
  const std::string uid = read_results(path("A.h5")).run_uid;
  EXPECT_EQ(uid.size(), 16u);
  Checkpoint ck = load_checkpoint(path("A_ck.h5"));
  ASSERT_TRUE(ck.trainer);
  EXPECT_EQ(ck.trainer->run_uid, uid);
  EXPECT_EQ(ck.trainer->status, "interrupted");
  EXPECT_CONTAINS(ck.trainer->results_file, "A.h5");
  Outcome r = run(run_args({{"train.steps", "60"}, {"mqar.train", "16:2:4000"}}) +
                  V{"--resume", path("A_ck.h5"), "--out", path("A.h5"), "--checkpoint-out",
                    path("A_ck.h5")});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_results(path("A.h5")).run_uid, uid) << "a resumed run keeps its id";
  EXPECT_EQ(load_checkpoint(path("A_ck.h5")).trainer->status, "completed");
}

TEST_F(Attack, ResumeWithRegeneratedTokenFileRefused) {
  auto data = [&](const std::string& seed) {
    return run({"data", "--model.vocab_size", "37", "--mqar.train", "16:2:40", "--mqar.test",
                "16:2:8", "--train-out", path("tr.h5"), "--show", "0", "--mqar.seed", seed,
                "--overwrite"});
  };
  ASSERT_EQ(data("1").code, 0);
  ASSERT_EQ(run(run_args() + V{"--data.train", path("tr.h5"), "--out", path("r.h5"),
                               "--checkpoint-out", path("ck.h5")})
                .code,
            0);
  // The same path, other content: the run would silently continue on other data.
  ASSERT_EQ(data("2").code, 0);
  refused(run_args() + V{"--data.train", path("tr.h5"), "--resume", path("ck.h5"), "--out",
                         path("r.h5"), "--checkpoint-out", path("ck.h5"), "--overwrite"},
          2, {"tr.h5", "data.train", "ck.h5", "changed", "--init-from"});
  // Regenerated with the same content (same command): accepted.
  ASSERT_EQ(data("1").code, 0);
  Outcome ok = run(run_args() + V{"--data.train", path("tr.h5"), "--resume", path("ck.h5"),
                                  "--out", path("r.h5"), "--checkpoint-out", path("ck.h5"),
                                  "--overwrite"});
  EXPECT_EQ(ok.code, 0) << ok.out;
}

TEST_F(Attack, ResumeFromExpandOutputPointsToInitFrom) {
  std::string ck = checkpoint();
  ASSERT_EQ(run({"expand", "--checkpoint", ck, "--out", path("big.h5")}).code, 0);
  refused(V{"train"} + tiny() + V{"--resume", path("big.h5"), "--out", path("r.h5")}, 2,
          {"big.h5", "statex expand", "--init-from " + path("big.h5")});
  // What it points to works.
  Outcome r = run(V{"train"} + tiny() + V{"--init-from", path("big.h5"), "--out", path("r.h5")});
  EXPECT_EQ(r.code, 0) << r.out;
}

// The finding behind the protocol: A completes; B --overwrite is interrupted (A kept as .prev);
// C --overwrite fails. Before, C's start replaced .prev with B's unfinished file and its failure
// put that back: A was gone.
TEST_F(Attack, InterruptedThenFailedOverwriteKeepsTheCompletedRun) {
  const std::string out = path("r.h5");
  ASSERT_EQ(run(V{"train"} + tiny() + V{"--out", out}).code, 0);
  const std::string a = read_bytes(out);
  pid_t pid = spawn(V{"train"} + tiny({{"train.steps", "400"}, {"mqar.train", "16:2:4000"},
                                       {"train.seed", "2"}}) +
                        V{"--out", out, "--overwrite"},
                    path("b.log"));
  for (int i = 0; i < 1000; ++i) {
    usleep(5000);
    try {
      if (read_results(out).param_seed == 2) break;
    } catch (const std::exception&) {
    }
  }
  kill(pid, SIGKILL);
  wait_exit(pid);
  ASSERT_EQ(read_bytes(out + ".prev"), a);
  Outcome c = run(V{"train"} + tiny({{"train.lr", "1e30"}, {"train.grad_clip", "0"},
                                     {"train.seed", "3"}, {"train.steps", "20"}}) +
                  V{"--out", out, "--overwrite"});
  ASSERT_EQ(c.code, 5) << c.out;
  EXPECT_EQ(read_bytes(out), a) << "the completed run is lost";
  EXPECT_CONTAINS(c.out, "put back");
}

// Without --overwrite a path whose .prev holds a kept file is not free: a completed run there
// would drop the kept file.
TEST_F(Attack, KeptPreviousFileNeedsOverwrite) {
  const std::string out = path("r.h5");
  ASSERT_EQ(run(V{"train"} + tiny() + V{"--out", out}).code, 0);
  ASSERT_EQ(link(out.c_str(), (out + ".prev").c_str()), 0);
  ASSERT_EQ(unlink(out.c_str()), 0);
  refused(V{"train"} + tiny() + V{"--out", out}, 2, {"r.h5.prev", "--overwrite"});
}

}  // namespace
}  // namespace statex::cli_test
