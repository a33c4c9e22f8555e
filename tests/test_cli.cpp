// The real `statex` binary (path in $STATEX_BIN, set by ctest; else next to this test binary):
// help, option errors that name the option, checkpoint errors that name the file, --out
// checks, no partial output after an error, and the info / expand / eval commands.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <map>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "sim/io/checkpoint.h"
#include "sim/io/results_file.h"
#include "sim/io/token_file.h"
#include "sim/model/state_size.h"
#include "tests/cli/cli_harness.h"
#include "tests/support/model_harness.h"

using namespace statex;
using namespace statex::testing;

namespace {

using statex::cli_test::statex_bin;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `statex <args>` (args are shell words; the tests quote nothing unusual).
Result statex(const std::string& args) {
  std::string cmd = "'" + statex_bin() + "' " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// A tiny, fast, valid configuration (GLA, D 16, V 37, T 16). Errors below change one option at
// a time (options may be given once only) so that a missed check cannot turn into a long
// default-sized run.
std::string tiny(std::map<std::string, std::string> over = {}, bool quiet = true) {
  std::string s;
  for (const std::string& w : statex::cli_test::tiny(std::move(over)))
    if (quiet || w != "--quiet") s += " " + w;
  return s;
}
const std::string kTiny = tiny();

// Only the model.* words of an option string (statex info reads no other experiment option).
std::string model_only(const std::string& args) {
  std::istringstream in(args);
  std::string k, v, out;
  while (in >> k) {
    if (k.rfind("--model.", 0) == 0 && in >> v) out += " " + k + " " + v;
  }
  return out;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(statex_bin().c_str(), X_OK), 0) << "statex binary not found at "
                                                     << statex_bin() << " (set STATEX_BIN)";
  }
  std::string path(const std::string& name) const { return dir_.path(name); }
  // A real checkpoint of the tiny config (trained 4 steps).
  std::string make_checkpoint(const std::string& name = "ck.h5", const std::string& extra = "") {
    Result r = statex("train" + kTiny + extra + " --out " + path(name + ".run.h5") +
                      " --checkpoint-out " + path(name));
    EXPECT_EQ(r.code, 0) << r.out;
    return path(name);
  }
  // Runs a command that must fail: exit code `code` (or any non-zero when code < 0), message
  // containing every needle, and no new file in the test directory.
  void expect_error(const std::string& args, int code, std::vector<std::string> needles) {
    std::vector<std::string> before = list_dir(dir_.dir());
    Result r = statex(args);
    if (code >= 0)
      EXPECT_EQ(r.code, code) << "statex " << args << "\n" << r.out;
    else
      EXPECT_NE(r.code, 0) << "statex " << args << "\n" << r.out;
    for (auto& n : needles) EXPECT_CONTAINS(r.out, n);
    EXPECT_EQ(list_dir(dir_.dir()), before) << "files left behind by: statex " << args;
  }
  TempDir dir_{"statex_cli"};
};

TEST_F(Cli, TrainHelpListsOptionsWithDefaults) {
  Result r = statex("train --help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"--model.d_model arg (=64)", "--model.heads arg (=2)",
                        "--train.lr arg (=0.01)", "--mqar.train arg (=64:4:100000)",
                        "--statex.mode arg (=reinit)", "--out", "--resume", "--checkpoint-out"})
    EXPECT_CONTAINS(r.out, s);
  Result top = statex("--help");
  EXPECT_EQ(top.code, 0);
  for (const char* s : {"train", "eval", "expand", "info"}) EXPECT_CONTAINS(top.out, s);
  EXPECT_EQ(statex("").code, 2);
  expect_error("frobnicate", 2, {"frobnicate"});
}

TEST_F(Cli, UnknownOptionNamesIt) {
  expect_error("train" + kTiny + " --model.bogus 3 --out " + path("r.h5"), 2, {"model.bogus"});
  expect_error("eval --no-such-flag --out " + path("e.h5"), 2, {"no-such-flag"});
}

TEST_F(Cli, ModelOptionErrorsNameTheOption) {
  const std::string out = " --out " + path("r.h5");
  expect_error("train" + tiny({{"model.heads", "3"}}) + out, 2, {"model.heads"});  // Dk = 8
  expect_error("train" + tiny({{"model.d_model", "0"}}) + out, 2, {"model.d_model"});
  expect_error("train" + tiny({{"model.n_layers", "-1"}}) + out, 2, {"model.n_layers"});
  expect_error("train" + tiny({{"model.model", "rnn"}}) + out, 2, {"model.model"});
  expect_error("train" + tiny({{"model.model", "mamba2"}, {"model.head_dim", "7"}}) + out, 2,
               {"model.head_dim"});
  expect_error("train" + tiny({{"model.model", "mamba2"}, {"model.ngroups", "3"}}) + out, 2,
               {"model.ngroups"});
  expect_error("train" + tiny({{"model.model", "mamba2"}, {"model.d_state", "0"}}) + out, 2,
               {"model.d_state"});
}

// Attention (issue 18): StateX refused with exit code 2 and nothing written, on train and on
// expand; info reports the KV cache at the test length.
TEST_F(Cli, AttentionRefusesStatexAndReportsItsKvCache) {
  const std::string attn = " --model.model attention";
  expect_error("train" + tiny({{"model.model", "attention"}, {"statex.step", "2"}}) + " --out " +
                   path("r.h5"),
               2, {"StateX does not apply", "model.model = attention"});
  const std::string ck = make_checkpoint("attn.h5", attn);
  expect_error("expand --checkpoint " + ck + " --out " + path("x.h5"), 2,
               {"StateX does not apply"});
  Result r = statex("info" + attn + " --mqar.test 32:2:4");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "KV cache at length T = 32");
  EXPECT_CONTAINS(r.out, "4096");  // 2 T D = 2 * 32 * 64 per layer
}

TEST_F(Cli, TrainOptionErrorsNameTheOption) {
  const std::string out = " --out " + path("r.h5");
  expect_error("train" + tiny({{"train.steps", "0"}}) + out, 2, {"train.steps"});
  expect_error("train" + tiny({{"train.steps", "-5"}}) + out, 2, {"train.steps"});
  expect_error("train" + tiny({{"train.batch_size", "0"}}) + out, 2, {"train.batch_size"});
  expect_error("train" + tiny({{"train.eval_every", "0"}}) + out, 2, {"train.eval_every"});
  expect_error("train" + kTiny + " --statex.step 2 --statex.count 3" + out, 2, {"statex.count"});
  expect_error("train" + kTiny + " --statex.step 9" + out, 2, {"statex.step"});
  expect_error("train" + kTiny + " --statex.step 1 --statex.gla_heads 3" + out, 2,
               {"statex.gla_heads"});
}

TEST_F(Cli, MqarErrorsNameTheOption) {
  const std::string out = " --out " + path("r.h5");
  expect_error("train" + tiny({{"mqar.train", "16:5:40"}}) + out, 2, {"mqar.train", "4*K <= T"});
  expect_error("train" + tiny({{"mqar.train", "15:2:40"}}) + out, 2, {"mqar.train", "T=15"});
  expect_error("train" + tiny({{"mqar.test", "16:2:0"}}) + out, 2, {"mqar.test"});
  expect_error("train" + tiny({{"mqar.train", "16:2"}}) + out, 2, {"mqar.train"});
  // V = 16 has 7 keys in [1, 8): K = 8 cannot be drawn.
  expect_error("train" +
                   tiny({{"model.vocab_size", "16"}, {"mqar.train", "32:8:10"},
                         {"mqar.test", "32:8:4"}}) +
                   out,
               2, {"mqar.train", "model.vocab_size"});
  // Zoology's V > T.
  expect_error("train" + tiny({{"mqar.train", "64:2:10"}}) + out, 2,
               {"mqar.train", "model.vocab_size"});
}

TEST_F(Cli, OutInMissingDirectoryNamesOut) {
  const std::string ck = make_checkpoint();
  std::vector<std::string> before = list_dir(dir_.dir());
  const std::string bad = path("no_such_dir/x.h5");
  expect_error("train" + kTiny + " --out " + bad, 2, {"--out", bad});
  expect_error("train" + kTiny + " --out " + path("r.h5") + " --checkpoint-out " + bad, 2,
               {"--checkpoint-out", bad});
  expect_error("eval --checkpoint " + ck + " --mqar.test 16:2:8 --out " + bad, 2, {"--out", bad});
  // expand names the path it cannot write (it has no --out pre-check; see report).
  expect_error("expand --checkpoint " + ck + " --out " + bad, -1, {bad});
  EXPECT_FALSE(file_exists(path("no_such_dir")));
}

TEST_F(Cli, BadCheckpointsNameTheFile) {
  const std::string ck = make_checkpoint();
  // Truncated: the first half of a real checkpoint.
  const std::string trunc = path("trunc.h5");
  {
    std::ifstream in(ck, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    ASSERT_GT(bytes.size(), 1000u);
    std::ofstream(trunc, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  // Not HDF5 at all.
  const std::string junk = path("junk.h5");
  std::ofstream(junk) << "this is not a checkpoint\n";
  // A checkpoint of another model (Mamba2).
  const std::string other =
      make_checkpoint("mamba.h5", " --model.model mamba2 --model.head_dim 8 --model.d_state 4");
  const std::string missing = path("missing.h5");

  for (const std::string& f : {missing, trunc, junk}) {
    SCOPED_TRACE(f);
    expect_error("eval --checkpoint " + f + " --mqar.test 16:2:8 --out " + path("e.h5"), -1,
                 {f, "checkpoint"});
    expect_error("train" + kTiny + " --resume " + f + " --out " + path("r.h5"), -1, {f});
    expect_error("train" + kTiny + " --init-from " + f + " --out " + path("r.h5"), -1, {f});
    expect_error("expand --checkpoint " + f + " --out " + path("x.h5"), -1, {f});
    expect_error("info --checkpoint " + f, -1, {f});
  }
  // Wrong model for this config: resume / init-from refuse and say what differs.
  expect_error("train" + kTiny + " --resume " + other + " --out " + path("r.h5"), -1,
               {other, "model.model"});
  expect_error("train" + kTiny + " --init-from " + other + " --out " + path("r.h5"), -1,
               {other, "model.model"});
  // Resume a checkpoint written without optimizer state (statex expand output).
  Result ex = statex("expand --checkpoint " + ck + " --out " + path("big.h5"));
  ASSERT_EQ(ex.code, 0) << ex.out;
  expect_error("train" + kTiny + " --resume " + path("big.h5") + " --out " + path("r.h5"), -1,
               {path("big.h5")});
}

// Parses the "total" row of `statex info`: state scalars and bytes.
std::pair<long long, long long> info_totals(const std::string& out) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("total", 0) == 0) {
      std::istringstream w(line.substr(5));
      long long scalars = -1, bytes = -1;
      w >> scalars >> bytes;
      return {scalars, bytes};
    }
  return {-1, -1};
}

TEST_F(Cli, InfoPrintsStateSizesWithUnits) {
  Result r = statex("info" + model_only(tiny({{"model.n_layers", "3"}}, /*quiet=*/false)) + " --params");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "state scalars");
  EXPECT_CONTAINS(r.out, "state bytes");
  EXPECT_CONTAINS(r.out, "conv state scalars");
  EXPECT_CONTAINS(r.out, "model.layers.2.attn.q_proj.weight");
  // GLA D 16: Dk 8, Dv 16, H 2 -> 64 scalars per layer, 3 layers.
  auto [scalars, bytes] = info_totals(r.out);
  EXPECT_EQ(scalars, 3 * 64);
  EXPECT_EQ(bytes, 4 * 3 * 64);
  Result m = statex("info" + model_only(tiny({{"model.model", "mamba2"}, {"model.head_dim", "8"},
                                                {"model.d_state", "5"}},
                                               /*quiet=*/false)));
  ASSERT_EQ(m.code, 0) << m.out;
  EXPECT_EQ(info_totals(m.out).first, 2 * 32 * 5);  // L * d_inner * N
}

TEST_F(Cli, ExpandWritesLargerState) {
  const std::string ck = make_checkpoint();
  const std::string big = path("big.h5");
  Result r = statex("expand --checkpoint " + ck + " --out " + big +
                    " --statex.count 2 --statex.mode inherit");
  ASSERT_EQ(r.code, 0) << r.out;
  Checkpoint a = load_checkpoint(ck), b = load_checkpoint(big);
  const int64_t sa = compute_state_size(a.model).total_state_scalars();
  const int64_t sb = compute_state_size(b.model).total_state_scalars();
  EXPECT_EQ(sa, 2 * 64);
  EXPECT_EQ(sb, 2 * 128);  // both layers 2 heads -> 1
  EXPECT_CONTAINS(r.out, std::to_string(sa) + " -> " + std::to_string(sb) + " scalars");
  EXPECT_FALSE(b.has_optimizer);
  // info on the expanded checkpoint reports the same.
  Result i = statex("info --checkpoint " + big);
  ASSERT_EQ(i.code, 0) << i.out;
  EXPECT_EQ(info_totals(i.out).first, sb);
  // The documented next step (sim/cli/cmd_expand.cpp): continue training the expanded
  // checkpoint with `statex train --init-from OUT` and the original options.
  Result t = statex("train" + kTiny + " --init-from " + big + " --out " + path("cont.h5"));
  EXPECT_EQ(t.code, 0) << "train --init-from an expanded checkpoint: " << t.out;
  if (t.code == 0) {
    EXPECT_EQ(read_results(path("cont.h5")).state.total_state_scalars(), sb);
  }
}

TEST_F(Cli, EvalWritesAccuracy) {
  const std::string ck = make_checkpoint();
  const std::string ev = path("ev.h5");
  Result r = statex("eval --checkpoint " + ck + " --mqar.test 16:2:8 --out " + ev);
  ASSERT_EQ(r.code, 0) << r.out;
  EvalOutput e = read_eval_output(ev);
  EXPECT_EQ(e.num_examples, 8);
  EXPECT_EQ(e.seq_len, 16);
  EXPECT_EQ(e.vocab_size, 37);
  EXPECT_TRUE(e.has_labels);
  EXPECT_EQ(e.labelled_positions, 8 * 2);
  EXPECT_GE(e.accuracy, 0.f);
  EXPECT_LE(e.accuracy, 1.f);
  EXPECT_TRUE(std::isfinite(e.loss));
  EXPECT_EQ(e.logits.size(), size_t(16 * 37));
  EXPECT_CONTAINS(r.out, "accuracy");
  // The same test set as training: eval's accuracy equals the run's final eval.
  RunRecord run = read_results(path("ck.h5.run.h5"));
  EXPECT_FLOAT_EQ(e.accuracy, run.evals.back().accuracy);
}

TEST_F(Cli, TrainWritesResultsAndFailsOnNonFiniteLoss) {
  const std::string out = path("r.h5");
  Result r = statex("train" + kTiny + " --out " + out + " --checkpoint-out " + path("c.h5"));
  ASSERT_EQ(r.code, 0) << r.out;
  RunRecord rec = read_results(out);
  EXPECT_EQ(rec.status, "completed");
  EXPECT_EQ(rec.curve.size(), 4u);
  EXPECT_EQ(rec.config.at("model.d_model"), "16");
  // A huge learning rate fails with exit code 5 and a results file that says why.
  Result f = statex("train" +
                    tiny({{"train.lr", "1e30"}, {"train.warmup_steps", "0"},
                          {"train.grad_clip", "0"}}) +
                    " --out " + path("fail.h5"));
  EXPECT_EQ(f.code, 5) << f.out;
  EXPECT_CONTAINS(f.out, "non-finite");
  RunRecord fr = read_results(path("fail.h5"));
  EXPECT_EQ(fr.status, "failed");
  EXPECT_FALSE(fr.failure_reason.empty());
}

// eval reads only the test set (mqar.test) and takes the vocabulary from the checkpoint, so it
// should not reject the default mqar.train (64:4:100000, which needs V > 64) that it never uses.
TEST_F(Cli, EvalNeedsOnlyTestSetOptions) {
  const std::string ck = make_checkpoint();
  Result r = statex("eval --checkpoint " + ck + " --mqar.test 16:2:8 --out " + path("ev.h5"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(file_exists(path("ev.h5")), r.code == 0);
}

// The benchmark runs a preset end to end and prints one parseable row per preset; an unknown
// preset is named in the error. (Functional only: no timing is asserted.)
TEST_F(Cli, BenchPrintsARowPerPresetAndNamesUnknownPresets) {
  Result r = statex("bench --preset quickstart-gla,quickstart-mamba2 --steps 2 --peak-n 64 "
                    "--train.threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("median of 2 timed steps"), std::string::npos) << r.out;
  for (const char* name : {"quickstart-gla", "quickstart-mamba2"}) {
    const size_t at = r.out.find(std::string("\n") + name + " ");
    ASSERT_NE(at, std::string::npos) << name << " row missing:\n" << r.out;
    std::istringstream row(r.out.substr(at + 1));
    std::string preset, model;
    int D, V, T, K, B;
    double step_ms, tokens_per_s, gflops;
    row >> preset >> model >> D >> V >> T >> K >> B >> step_ms >> tokens_per_s >> gflops;
    ASSERT_FALSE(row.fail()) << r.out;
    EXPECT_EQ(D, 64);
    EXPECT_GT(step_ms, 0.0);
    EXPECT_NEAR(tokens_per_s, B * T / (step_ms / 1e3), 0.01 * tokens_per_s);
    EXPECT_GT(gflops, 0.0);
  }
  // --profile adds a per-op table after each row.
  Result prof = statex("bench --preset quickstart-gla --steps 1 --peak-n 64 --train.threads 1 "
                       "--profile");
  ASSERT_EQ(prof.code, 0) << prof.out;
  for (const char* op : {"linear_backward", "gla_backward", "adamw_update", "(all ops)"})
    EXPECT_NE(prof.out.find(op), std::string::npos) << op << " missing:\n" << prof.out;
  Result bad = statex("bench --preset no-such-preset --steps 1 --peak-n 64");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("--preset: unknown preset 'no-such-preset'"), std::string::npos)
      << bad.out;
  // The GPU-only options name what is missing on the CPU.
  Result kernels = statex("bench --kernels --steps 1 --peak-n 64");
  EXPECT_NE(kernels.code, 0);
  EXPECT_NE(kernels.out.find("--kernels times the CUDA kernels: add --device cuda"),
            std::string::npos)
      << kernels.out;
  Result cpu_steps = statex("bench --cpu-steps -1 --steps 1 --peak-n 64");
  EXPECT_NE(cpu_steps.code, 0);
  EXPECT_NE(cpu_steps.out.find("--cpu-steps must be >= 0"), std::string::npos) << cpu_steps.out;
}

}  // namespace
