// Attack: bad input refused up front (exit 2, the option named, nothing written), and the CLI
// papercuts: per-command --help, no abbreviations, warnings and the start-of-run header.
#include <algorithm>

#include "sim/core/backend.h"
#include "sim/io/token_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

V train_with(std::map<std::string, std::string> over, const std::string& out) {
  return V{"train"} + tiny(std::move(over)) + V{"--out", out};
}

TEST_F(Attack, AbsurdWidthGivesAMemoryEstimate) {
  refused(train_with({{"model.d_model", "2000000"}}, path("r.h5")), 2,
          {"GiB", "model.d_model"});
}

TEST_F(Attack, AbsurdBatchGivesAMemoryEstimate) {
  refused(train_with({{"train.batch_size", "2000000000"}}, path("r.h5")), 2,
          {"GiB", "train.batch_size"});
}

TEST_F(Attack, AbsurdVocabularyGivesAMemoryEstimate) {
  refused(train_with({{"model.vocab_size", "1500000000"}}, path("r.h5")), 2,
          {"GiB", "model.vocab_size"});
}

TEST_F(Attack, InfiniteEpsilonsRefused) {
  refused(train_with({{"model.norm_eps", "inf"}}, path("r.h5")), 2, {"model.norm_eps"});
  refused(train_with({{"train.adam_eps", "inf"}}, path("r.h5")), 2, {"train.adam_eps"});
  refused(train_with({{"train.lr", "nan"}}, path("r.h5")), 2, {"train.lr"});
  refused(train_with({{"train.weight_decay", "inf"}}, path("r.h5")), 2, {"train.weight_decay"});
}

TEST_F(Attack, NegativeSeedsRefused) {
  refused(train_with({{"train.seed", "-1"}}, path("r.h5")), 2, {"train.seed", "-1"});
  refused(train_with({{"mqar.seed", "-5"}}, path("r.h5")), 2, {"mqar.seed"});
  refused(train_with({{"train.seed", "12abc"}}, path("r.h5")), 2, {"train.seed"});
}

TEST_F(Attack, StatexStepMinusSevenRefused) {
  refused(train_with({{"statex.step", "-7"}}, path("r.h5")), 2, {"statex.step", "-7"});
}

TEST_F(Attack, StatexFractionOneNamesFraction) {
  Outcome r = refused(train_with({{"statex.fraction", "1.0"}}, path("r.h5")), 2, {"statex.fraction"});
  EXPECT_EQ(r.out.find("statex.step"), std::string::npos) << r.out;
}

TEST_F(Attack, ExpandMamba2WithGlaHeadsRefused) {
  std::string ck = checkpoint("m2.h5", {{"model.model", "mamba2"}, {"model.gate_low_rank", "<unset>"}});
  refused({"expand", "--checkpoint", ck, "--out", path("x.h5"), "--statex.gla_heads", "1"}, 2,
          {"statex.gla_heads", "mamba2"});
}

TEST_F(Attack, NoOpExpansionRefused) {
  std::string ck = checkpoint("h1.h5", {{"model.heads", "1"}});
  refused({"expand", "--checkpoint", ck, "--out", path("x.h5"), "--statex.gla_heads", "1"}, 2,
          {"statex.gla_heads", "re-initialise"});
  refused(train_with({{"model.heads", "1"}, {"statex.step", "2"}, {"statex.gla_heads", "1"}},
                     path("r.h5")),
          2, {"statex.gla_heads"});
}

// StateX merges r = H / H' whole heads into each new head: 6 -> 4 heads (Dk, Dv divisible by
// both) used to be accepted, and Gated DeltaNet inherit dropped heads 4 and 5. Refused by name,
// in `statex expand` and in-run alike, before anything is written, for every family.
TEST_F(Attack, StatexHeadCountThatCannotBeMappedRefused) {
  for (const char* model : {"gla", "gated_deltanet"}) {
    SCOPED_TRACE(model);
    std::map<std::string, std::string> six = {
        {"model.model", model}, {"model.d_model", "24"}, {"model.heads", "6"}};
    std::string ck = checkpoint(std::string(model) + ".h5", six);
    for (const char* mode : {"inherit", "reinit"})
      refused({"expand", "--checkpoint", ck, "--out", path("x.h5"), "--statex.gla_heads", "4",
               "--statex.mode", mode},
              2, {"statex.gla_heads = 4", "6 heads", "1, 2, 3"});
    auto in_run = six;
    in_run["statex.step"] = "2";
    in_run["statex.gla_heads"] = "4";
    refused(train_with(in_run, path("r.h5")), 2, {"statex.gla_heads = 4", "6 heads"});
    in_run["statex.arm"] = "scratch";
    in_run.erase("statex.step");
    refused(train_with(in_run, path("r.h5")), 2, {"statex.gla_heads = 4"});
    Outcome ok = run({"expand", "--checkpoint", ck, "--out", path("x3.h5"), "--statex.gla_heads",
                      "3", "--statex.mode", "inherit"});
    EXPECT_EQ(ok.code, 0) << ok.out;
    ::unlink(path("x3.h5").c_str());
  }
  std::string m2 = checkpoint("m2.h5", {{"model.model", "mamba2"}, {"model.gate_low_rank", "<unset>"}});
  refused({"expand", "--checkpoint", m2, "--out", path("x.h5"), "--statex.state_mult", "1073741824"},
          2, {"statex.state_mult"});
}

TEST_F(Attack, EvalTokensOnSmallVocabulary) {
  // V = 12 cannot hold the default MQAR test set (T = 64), which eval with --tokens never uses.
  std::string ck = checkpoint("v12.h5", {{"model.vocab_size", "12"}, {"mqar.train", "8:2:40"},
                                         {"mqar.test", "8:2:8"}});
  TokenFile tf;
  tf.num_examples = 2;
  tf.seq_len = 5;
  tf.tokens = {1, 2, 3, 4, 5, 0, 1, 2, 3, 4};
  write_token_file(path("tok.h5"), tf);
  Outcome r = run({"eval", "--checkpoint", ck, "--tokens", path("tok.h5"), "--out", path("e.h5")});
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(Attack, CudaWithoutGpuExitsTwo) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible";
  refused(train_with({{"device", "cuda"}}, path("r.h5")), 2, {"device", "cuda"});
}

TEST_F(Attack, ConfigSyntaxErrorNamesFileAndLine) {
  std::ofstream(path("bad.ini")) << "[train]\nsteps = 4\nthis line is broken\n";
  refused({"train", "--config", path("bad.ini"), "--out", path("r.h5")}, 2, {"bad.ini:3"});
}

TEST_F(Attack, ConfigUnknownOptionNamesFileAndLine) {
  std::ofstream(path("bad.ini")) << "[model]\nd_model = 16\n\n[train]\nstepz = 4\n";
  refused({"train", "--config", path("bad.ini"), "--out", path("r.h5")}, 2,
          {"bad.ini:5", "train.stepz"});
}

TEST_F(Attack, ConfigBadValueNamesFileAndLine) {
  std::ofstream(path("bad.ini")) << "[train]\n\nsteps = many\n";
  refused({"train", "--config", path("bad.ini"), "--out", path("r.h5")}, 2, {"bad.ini:3"});
}

TEST_F(Attack, AbbreviationsRefused) {
  Outcome r = refused(V{"train"} + tiny({{"train.steps", "<unset>"}}) +
                      V{"--train.step", "50", "--out", path("r.h5")},
                  2, {"--train.step"});
  EXPECT_CONTAINS(r.out, "abbreviations");
}

TEST_F(Attack, OptionsACommandIgnoresAreRefused) {
  std::string ck = checkpoint();
  refused({"eval", "--checkpoint", ck, "--out", path("e.h5"), "--train.lr", "0.1"}, 2,
          {"--train.lr", "not used by statex eval"});
  refused({"expand", "--checkpoint", ck, "--out", path("x.h5"), "--mqar.train", "16:2:4"}, 2,
          {"--mqar.train", "not used by statex expand"});
}

TEST_F(Attack, HelpListsOnlyWhatTheCommandUses) {
  Outcome eval = run({"eval", "--help"});
  EXPECT_EQ(eval.code, 0);
  EXPECT_CONTAINS(eval.out, "--mqar.test");
  EXPECT_EQ(eval.out.find("--train.lr"), std::string::npos) << eval.out;
  EXPECT_EQ(eval.out.find("--model.d_model"), std::string::npos);
  Outcome expand = run({"expand", "--help"});
  EXPECT_CONTAINS(expand.out, "--statex.gla_heads");
  EXPECT_EQ(expand.out.find("--train.steps"), std::string::npos);
  Outcome info = run({"info", "--help"});
  EXPECT_CONTAINS(info.out, "--model.d_model");
  EXPECT_EQ(info.out.find("--statex.mode"), std::string::npos);
  Outcome train = run({"train", "--help"});
  for (const char* s : {"--train.lr", "--model.d_model", "--statex.mode", "--overwrite", "75"})
    EXPECT_CONTAINS(train.out, s);
}

TEST_F(Attack, WarmupLongerThanRunWarns) {
  Outcome r = run(train_with({{"train.warmup_steps", "10"}}, path("r.h5")));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "warning: train.warmup_steps = 10");
}

TEST_F(Attack, StartOfRunHeader) {
  V args = train_with({}, path("r.h5"));
  args.erase(std::find(args.begin(), args.end(), "--quiet"));
  Outcome r = run(args + V{"--checkpoint-out", path("c.h5")});
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* s : {"gla, L=2, D=16, V=37", "params", "state", "bytes", "r.h5", "c.h5"})
    EXPECT_CONTAINS(r.out, s);
}

}  // namespace
}  // namespace statex::cli_test
