// Attack: outputs that would destroy inputs or other outputs, silent overwrites, two writers,
// empty paths, a full disk. Every refusal exits 2 and leaves every earlier file byte-identical.
#include <sys/file.h>

#include "sim/io/results_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

TEST_F(Attack, TrainOutSameAsCheckpointOut) {
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", path("x.h5"), "--checkpoint-out", path("x.h5")}, 2,
          {"--checkpoint-out", "same file as --out"});
}

TEST_F(Attack, TrainResumeCheckpointAsOut) {
  std::string ck = checkpoint();
  refused(std::vector<std::string>{"train"} + tiny() + V{"--resume", ck, "--out", ck}, 2, {"--out", "--resume", "an input"});
}

TEST_F(Attack, TrainInitFromAsOutAndCheckpointOut) {
  std::string ck = checkpoint();
  refused(std::vector<std::string>{"train"} + tiny() + V{"--init-from", ck, "--out", ck}, 2, {"--init-from"});
  refused(std::vector<std::string>{"train"} + tiny() + V{"--init-from", ck, "--out", path("n.h5"), "--checkpoint-out", ck},
          2, {"--checkpoint-out", "--init-from"});
}

TEST_F(Attack, TrainConfigFileAsOut) {
  {
    std::ofstream(path("exp.ini")) << "[train]\nsteps = 4\n";
  }
  refused(std::vector<std::string>{"train"} + tiny() + V{"--config", path("exp.ini"), "--out", path("exp.ini")}, 2,
          {"--config"});
}

TEST_F(Attack, EvalCheckpointAsOut) {
  std::string ck = checkpoint();
  refused({"eval", "--checkpoint", ck, "--out", ck}, 2, {"--out", "--checkpoint"});
}

TEST_F(Attack, ExpandCheckpointAsOut) {
  std::string ck = checkpoint();
  refused({"expand", "--checkpoint", ck, "--out", ck}, 2, {"--out", "--checkpoint"});
}

TEST_F(Attack, GradCheckpointAsOut) {
  std::string ck = checkpoint();
  refused({"grad", "--checkpoint", ck, "--tokens", path("t.h5"), "--out", ck}, 2, {"--checkpoint"});
}

TEST_F(Attack, CollisionThroughASymlink) {
  std::string ck = checkpoint();
  ASSERT_EQ(symlink(ck.c_str(), path("alias.h5").c_str()), 0);
  refused({"eval", "--checkpoint", ck, "--out", path("alias.h5")}, 2, {"same file"});
}

TEST_F(Attack, CollisionThroughDotDot) {
  std::string ck = checkpoint();
  ASSERT_EQ(mkdir(path("sub").c_str(), 0755), 0);
  refused({"expand", "--checkpoint", ck, "--out", path("sub/../ck.h5")}, 2, {"same file"});
}

TEST_F(Attack, ResumeMayKeepWritingItsCheckpoint) {
  std::string ck = path("ck.h5");
  Outcome first = run(std::vector<std::string>{"train"} + tiny({{"train.steps", "6"}, {"train.checkpoint_every", "2"}}) +
                  V{"--out", path("r.h5"), "--checkpoint-out", ck});
  ASSERT_EQ(first.code, 0) << first.out;
  // A finished run cannot be resumed into its completed results without --overwrite ...
  refused(std::vector<std::string>{"train"} + tiny({{"train.steps", "6"}, {"train.checkpoint_every", "2"}}) +
              V{"--resume", ck, "--out", path("r.h5"), "--checkpoint-out", ck},
          2, {"completed", "--overwrite"});
}

TEST_F(Attack, EmptyOutputPathsRefused) {
  std::string ck = checkpoint();
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", ""}, 2, {"--out is empty"});
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5"), "--checkpoint-out", ""}, 2,
          {"--checkpoint-out is empty"});
  refused({"eval", "--checkpoint", ck, "--out", ""}, 2, {"--out is empty"});
  refused({"expand", "--checkpoint", ck, "--out", ""}, 2, {"--out is empty"});
}

TEST_F(Attack, CompletedResultsNotOverwritten) {
  Outcome a = run(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5")});
  ASSERT_EQ(a.code, 0) << a.out;
  refused(std::vector<std::string>{"train"} + tiny({{"train.seed", "7"}}) + V{"--out", path("r.h5")}, 2,
          {"already exists", "--overwrite"});
}

TEST_F(Attack, DefaultRunH5NotOverwritten) {
  Outcome a = run(std::vector<std::string>{"train"} + tiny(), {dir()});
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_TRUE(exists(path("run.h5")));
  refused(std::vector<std::string>{"train"} + tiny({{"train.seed", "3"}}), 2, {"run.h5", "--overwrite"}, {dir()});
}

TEST_F(Attack, OverwriteReplacesAndLeavesNoCopy) {
  ASSERT_EQ(run(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5")}).code, 0);
  Outcome b = run(std::vector<std::string>{"train"} + tiny({{"train.seed", "9"}}) + V{"--out", path("r.h5"), "--overwrite"});
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_EQ(read_results(path("r.h5")).param_seed, 9u);
  EXPECT_FALSE(exists(path("r.h5.prev")));
  EXPECT_FALSE(exists(path("r.h5.lock")));
}

TEST_F(Attack, FailedNewRunKeepsTheOlderFile) {
  ASSERT_EQ(run(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5")}).code, 0);
  std::string old = read_bytes(path("r.h5"));
  // lr 1e30 without clipping: the loss becomes non-finite, the run fails (exit 5).
  Outcome b = run(std::vector<std::string>{"train"} + tiny({{"train.lr", "1e30"}, {"train.grad_clip", "0"}, {"train.steps", "20"}}) +
              V{"--out", path("r.h5"), "--overwrite"});
  ASSERT_EQ(b.code, 5) << b.out;
  EXPECT_EQ(read_bytes(path("r.h5")), old) << "a failed run replaced the earlier results";
  EXPECT_CONTAINS(b.out, "put back");
  EXPECT_EQ(read_results(path("r.h5.failed")).status, "failed");
}

TEST_F(Attack, ExistingCheckpointOutNeedsOverwrite) {
  std::string ck = checkpoint();
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", path("new.h5"), "--checkpoint-out", ck}, 2,
          {"--checkpoint-out", "--overwrite"});
}

TEST_F(Attack, ExistingEvalAndExpandOutputsNeedOverwrite) {
  std::string ck = checkpoint();
  ASSERT_EQ(run({"eval", "--checkpoint", ck, "--out", path("e.h5"), "--mqar.test", "16:2:8"}).code, 0);
  refused({"eval", "--checkpoint", ck, "--out", path("e.h5"), "--mqar.test", "16:2:8"}, 2,
          {"--overwrite"});
  Outcome again = run({"eval", "--checkpoint", ck, "--out", path("e.h5"), "--mqar.test", "16:2:8",
                   "--overwrite"});
  EXPECT_EQ(again.code, 0) << again.out;
  ASSERT_EQ(run({"expand", "--checkpoint", ck, "--out", path("x.h5")}).code, 0);
  refused({"expand", "--checkpoint", ck, "--out", path("x.h5")}, 2, {"--overwrite"});
}

TEST_F(Attack, LockedOutputRefused) {
  // Another writer holds the lock of r.h5 (as a running trainer does).
  int fd = open(path("r.h5.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5")}, 2, {"another statex process"});
  close(fd);
}

TEST_F(Attack, TwoTrainersOneOut) {
  V args = {"train"};
  args = args + tiny({{"train.steps", "400"}, {"mqar.train", "16:2:4000"}}) + V{"--out", path("r.h5")};
  pid_t first = spawn(args, path("first.log"));
  // Wait until the first trainer holds its lock, then start the second.
  for (int i = 0; i < 500 && !exists(path("r.h5.lock")); ++i) usleep(10000);
  Outcome second = run(args);
  EXPECT_EQ(second.code, 2) << second.out;
  EXPECT_CONTAINS(second.out, "another statex process");
  EXPECT_EQ(wait_exit(first), 0) << read_bytes(path("first.log"));
  EXPECT_EQ(read_results(path("r.h5")).status, "completed");
}

TEST_F(Attack, FullDiskIsAnErrorNotACrash) {
  ASSERT_EQ(run(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5")}).code, 0);
  std::string old = read_bytes(path("r.h5"));
  // Files larger than 4 KiB cannot be written (EFBIG), as on a full disk.
  Outcome r = run(std::vector<std::string>{"train"} + tiny({{"train.seed", "5"}}) + V{"--out", path("r.h5"), "--overwrite"},
              {"", 4096});
  EXPECT_FALSE(r.signaled) << "crashed: " << r.out;
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_LT(r.code, 128) << r.out;
  EXPECT_CONTAINS(r.out, "r.h5");
  EXPECT_EQ(read_bytes(path("r.h5")), old) << "the earlier results were damaged";
  EXPECT_FALSE(exists(path("r.h5.tmp")));
}


// A missing or read-only output directory is named as such by every command that writes (it
// used to surface as "cannot create the lock file"), and a directory given as --out is refused
// before anything happens (with --overwrite it used to end in EPERM on '<dir>.prev').
TEST_F(Attack, MissingOutputDirectoryNamed) {
  std::string ck = checkpoint();
  const std::string out = path("no/such/dir/r.h5");
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", out}, 2,
          {"--out", "directory", "does not exist"});
  refused(std::vector<std::string>{"train"} + tiny() + V{"--out", path("r.h5"), "--checkpoint-out", out},
          2, {"--checkpoint-out", "does not exist"});
  refused({"eval", "--checkpoint", ck, "--out", out, "--mqar.test", "16:2:8"}, 2,
          {"--out", "does not exist"});
  refused({"expand", "--checkpoint", ck, "--out", out}, 2, {"--out", "does not exist"});
  refused({"data", "--mqar.train", "16:2:8", "--model.vocab_size", "37", "--train-out", out}, 2,
          {"--train-out", "does not exist"});
  for (const auto& r : {run(std::vector<std::string>{"train"} + tiny() + V{"--out", out})})
    EXPECT_EQ(r.out.find("lock file"), std::string::npos) << r.out;
}

TEST_F(Attack, ReadOnlyOutputDirectoryNamed) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  ASSERT_EQ(mkdir(path("ro").c_str(), 0555), 0);
  Outcome r = refused(std::vector<std::string>{"train"} + tiny() + V{"--out", path("ro/r.h5")}, 2,
                      {"--out", "not writable"});
  EXPECT_EQ(r.out.find("lock file"), std::string::npos) << r.out;
}

TEST_F(Attack, DirectoryAsOutRefused) {
  ASSERT_EQ(mkdir(path("d.h5").c_str(), 0755), 0);
  for (bool overwrite : {false, true}) {
    V extra = {"--out", path("d.h5")};
    if (overwrite) extra.push_back("--overwrite");
    Outcome r = refused(std::vector<std::string>{"train"} + tiny() + extra, 2, {"--out", "is a directory"});
    EXPECT_EQ(r.out.find(".prev"), std::string::npos) << r.out;
  }
  EXPECT_FALSE(exists(path("d.h5.prev")));
}

}  // namespace
}  // namespace statex::cli_test
