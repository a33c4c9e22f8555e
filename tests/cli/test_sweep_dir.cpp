// Attack: a different sweep file run into an existing sweep directory must not drop the first
// sweep's finished trials from index.csv: it is refused (exit 2), and nothing changes.
#include <sys/stat.h>

#include <algorithm>

#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

std::string sweep_text(const std::string& seeds) {
  return "[model]\nd_model = 16\nvocab_size = 37\ngate_low_rank = 4\n"
         "[mqar]\ntrain = 16:2:40\ntest = 16:2:8\n"
         "[train]\nsteps = 2\nbatch_size = 2\neval_every = 2\nwarmup_steps = 1\n"
         "[sweep]\nname = s\ngrid.train.seed = " + seeds + "\n";
}

TEST_F(Attack, DifferentSweepIntoSameDirectoryRefused) {
  std::ofstream(path("a.ini")) << sweep_text("0, 1");
  std::ofstream(path("b.ini")) << sweep_text("5");
  const std::string out = path("sw");
  Outcome a = run({"sweep", path("a.ini"), "--out", out, "--quiet"});
  ASSERT_EQ(a.code, 0) << a.out;
  auto before = snapshot(out);
  auto trials_before = snapshot(out + "/trials");
  Outcome b = run({"sweep", path("b.ini"), "--out", out, "--quiet"});
  EXPECT_EQ(b.code, 2) << b.out;
  EXPECT_CONTAINS(b.out, "another sweep file");
  EXPECT_EQ(snapshot(out), before);
  EXPECT_EQ(snapshot(out + "/trials"), trials_before);
}

TEST_F(Attack, SweepFileThatKeepsEveryTrialMayGrow) {
  std::ofstream(path("a.ini")) << sweep_text("0");
  std::ofstream(path("b.ini")) << sweep_text("0, 1");
  const std::string out = path("sw");
  ASSERT_EQ(run({"sweep", path("a.ini"), "--out", out, "--quiet"}).code, 0);
  Outcome b = run({"sweep", path("b.ini"), "--out", out, "--quiet"});
  EXPECT_EQ(b.code, 0) << b.out;
  std::string index = read_bytes(out + "/index.csv");
  EXPECT_EQ(std::count(index.begin(), index.end(), '\n'), 3) << index;  // header + 2 trials
}


// A full disk while the runner rewrites index.csv (simulated with RLIMIT_FSIZE: index.csv can
// not grow past 256 bytes, as on a disk with no room left) used to stop the runner with the
// trial's row still saying "running", though nothing ran any more. Now the runner stops its
// trainers, and the index it leaves (rewritten in place when no new file fits) has no running
// row.
TEST_F(Attack, FullDiskLeavesNoStaleRunningRow) {
  const std::string script = path("trainer.sh");
  {
    std::ofstream(script) << "#!/bin/sh\necho " << std::string(300, 'x') << "\nexit 3\n";
  }
  chmod(script.c_str(), 0755);
  std::ofstream(path("s.ini")) << "[sweep]\nname = s\ngrid.train.seed = 0, 1\n";
  const std::string out = path("sw");
  Outcome r = run({"sweep", path("s.ini"), "--out", out, "--jobs", "1", "--trainer-cmd", script,
                   "--quiet"},
                  RunOptions{"", 256});
  EXPECT_FALSE(r.signaled) << r.out;
  EXPECT_EQ(r.code, 1) << r.out;
  const std::string index = read_bytes(out + "/index.csv");
  EXPECT_EQ(index.find(",running,"), std::string::npos) << index;
  EXPECT_NE(index.find(",failed,"), std::string::npos) << index;
  EXPECT_FALSE(exists(out + "/index.csv.tmp"));
}

}  // namespace
}  // namespace statex::cli_test
