// `statex data` and training from token files through the real binary ($STATEX_BIN, set by
// ctest): the round trip statex data -> file -> statex train --data.* gives the generator's loss
// curve bit for bit; errors name the option and write nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <string>

#include "sim/io/h5.h"
#include "sim/io/results_file.h"
#include "sim/io/token_file.h"
#include "sim/task/tasks.h"
#include "tests/support/model_harness.h"

namespace statex {
namespace {

std::string statex_bin() {
  if (const char* b = std::getenv("STATEX_BIN")) return b;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self = n > 0 ? std::string(buf, size_t(n)) : "./test_tasks_cli";
  return self.substr(0, self.rfind('/') + 1) + "statex";
}

// Runs `statex <args>`; returns the exit code and stdout + stderr.
std::pair<int, std::string> statex(const std::string& args) {
  std::string out;
  FILE* p = popen(("'" + statex_bin() + "' " + args + " 2>&1").c_str(), "r");
  if (!p) return {-1, out};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out};
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// A small mixture of every task (V 64 > T), tiny GLA, 12 steps with two evals.
const std::string kData =
    " --model.vocab_size 64 --mqar.seed 3"
    " --mqar.train forgetting:32:3:40:updates=2,compositional:36:4:30,24:2:20:passes=2"
    " --mqar.test forgetting:32:3:12:updates=1,compositional:36:4:9";
const std::string kModel =
    " --model.d_model 16 --model.gate_low_rank 4 --train.steps 12 --train.batch_size 8"
    " --train.eval_every 6 --train.warmup_steps 2 --train.threads 1 --train.seed 4 --quiet";

TEST(StatexData, WritesReadableSetsWithEverything) {
  testing::TempDir d("statex_tasks_cli");
  auto [code, out] = statex("data" + kData + " --train-out " + d.path("tr.h5") + " --test-out " +
                            d.path("te.h5") + " --show 2");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("wrote train set: 90 examples x 36 positions"), std::string::npos) << out;
  EXPECT_NE(out.find("wrote test set: 21 examples"), std::string::npos) << out;
  EXPECT_NE(out.find("(forgetting_"), std::string::npos) << "queries marked with their class";
  EXPECT_NE(out.find("->v"), std::string::npos) << out;
  TokenFile tr = read_token_file(d.path("tr.h5"));
  ASSERT_EQ(tr.num_examples, 90);
  EXPECT_EQ(tr.seq_len, 36);
  ASSERT_EQ(tr.lengths.size(), 90u);
  EXPECT_EQ(tr.lengths[0], 32);
  EXPECT_EQ(tr.lengths[89], 24);
  EXPECT_EQ(tr.task[0], int(Task::forgetting));
  EXPECT_EQ(tr.task[40], int(Task::compositional));
  EXPECT_EQ(tr.task[70], int(Task::mqar));
  EXPECT_EQ(tr.segment[75], 2);
  EXPECT_EQ(tr.segment_names.at(0), "forgetting:32:3:40:updates=2");
  EXPECT_EQ(tr.info.at("split"), "train");
  EXPECT_NE(tr.info.at("config_ini").find("random_non_queries = true"), std::string::npos);
  EXPECT_EQ(tr.distance.size(), tr.tokens.size());
  EXPECT_EQ(tr.query_class.size(), tr.tokens.size());
}

TEST(StatexData, RoundTripTrainsBitForBitLikeTheGenerator) {
  testing::TempDir d("statex_tasks_cli");
  auto [dc, dout] = statex("data" + kData + " --train-out " + d.path("tr.h5") + " --test-out " +
                           d.path("te.h5") + " --show 0");
  ASSERT_EQ(dc, 0) << dout;
  auto [gc, gout] = statex("train" + kData + kModel + " --out " + d.path("gen.h5"));
  ASSERT_EQ(gc, 0) << gout;
  auto [fc, fout] = statex("train" + kData + kModel + " --data.train " + d.path("tr.h5") +
                           " --data.test " + d.path("te.h5") + " --out " + d.path("file.h5"));
  ASSERT_EQ(fc, 0) << fout;
  RunRecord g = read_results(d.path("gen.h5")), f = read_results(d.path("file.h5"));
  ASSERT_EQ(g.curve.size(), 12u);
  ASSERT_EQ(f.curve.size(), g.curve.size());
  for (size_t i = 0; i < g.curve.size(); ++i) {
    EXPECT_EQ(std::memcmp(&g.curve[i].loss, &f.curve[i].loss, 4), 0)
        << "step " << g.curve[i].step << ": " << g.curve[i].loss << " vs " << f.curve[i].loss;
    EXPECT_EQ(g.curve[i].grad_norm, f.curve[i].grad_norm) << g.curve[i].step;
  }
  ASSERT_EQ(f.evals.size(), g.evals.size());
  for (size_t i = 0; i < g.evals.size(); ++i) {
    EXPECT_EQ(g.evals[i].accuracy, f.evals[i].accuracy);
    EXPECT_EQ(g.evals[i].loss, f.evals[i].loss);
    EXPECT_EQ(g.evals[i].gap_count, f.evals[i].gap_count);
    EXPECT_EQ(g.evals[i].class_count, f.evals[i].class_count);
  }
  EXPECT_EQ(f.test_segments, g.test_segments);
  // The plateau-escape K reads task segments too: min K over forgetting:32:3 and
  // compositional:36:4 is 3 (not T = 32 read from the wrong field).
  h5::Handle h = h5::open_file(d.path("gen.h5"));
  EXPECT_EQ(h5::read_attr_i64(h, "plateau_num_kv"), 3);
  EXPECT_EQ(g.evals.back().class_count[kForgettingKept] +
                g.evals.back().class_count[kForgettingUpdated], 12 * 3);
  EXPECT_EQ(g.evals.back().class_count[kForgettingUpdated], 12);
}

// The validation split through the binary: `statex data --valid-out` writes a set that shares
// no example with the train and test sets of the same seed (its own seed space), and training
// with --data.valid on that file gives the validation evals of --mqar.valid bit for bit, beside
// an unchanged test eval.
TEST(StatexData, ValidationSetDisjointAndRoundTrips) {
  testing::TempDir d("statex_tasks_cli");
  const std::string valid = " --mqar.valid forgetting:32:3:12:updates=1,compositional:36:4:9";
  auto [dc, dout] = statex("data" + kData + valid + " --train-out " + d.path("tr.h5") +
                           " --test-out " + d.path("te.h5") + " --valid-out " + d.path("va.h5") +
                           " --show 0");
  ASSERT_EQ(dc, 0) << dout;
  EXPECT_NE(dout.find("wrote valid set: 21 examples"), std::string::npos) << dout;
  TokenFile tr = read_token_file(d.path("tr.h5")), te = read_token_file(d.path("te.h5")),
            va = read_token_file(d.path("va.h5"));
  EXPECT_EQ(va.info.at("split"), "valid");
  auto rows = [](const TokenFile& f) {
    std::set<std::vector<int32_t>> out;
    for (int64_t n = 0; n < f.num_examples; ++n)
      out.insert(std::vector<int32_t>(f.tokens.begin() + n * f.seq_len,
                                      f.tokens.begin() + (n + 1) * f.seq_len));
    return out;
  };
  const auto train_rows = rows(tr), test_rows = rows(te), valid_rows = rows(va);
  EXPECT_EQ(valid_rows.size(), size_t(va.num_examples));
  for (const auto& r : valid_rows) {
    EXPECT_FALSE(train_rows.count(r)) << "a validation example is a train example";
    EXPECT_FALSE(test_rows.count(r)) << "a validation example is a test example";
  }
  // The test set is the one written without a validation split.
  auto [pc, pout] = statex("data" + kData + " --test-out " + d.path("te_plain.h5") + " --show 0");
  ASSERT_EQ(pc, 0) << pout;
  EXPECT_EQ(read_token_file(d.path("te_plain.h5")).tokens, te.tokens);

  auto [gc, gout] = statex("train" + kData + kModel + valid + " --out " + d.path("gen.h5"));
  ASSERT_EQ(gc, 0) << gout;
  auto [fc, fout] = statex("train" + kData + kModel + " --data.valid " + d.path("va.h5") +
                           " --out " + d.path("file.h5"));
  ASSERT_EQ(fc, 0) << fout;
  RunRecord g = read_results(d.path("gen.h5")), f = read_results(d.path("file.h5"));
  ASSERT_TRUE(g.has_valid && f.has_valid);
  ASSERT_EQ(g.valid_evals.size(), g.evals.size());
  ASSERT_EQ(f.valid_evals.size(), g.valid_evals.size());
  for (size_t i = 0; i < g.valid_evals.size(); ++i) {
    EXPECT_EQ(g.valid_evals[i].accuracy, f.valid_evals[i].accuracy);
    EXPECT_EQ(g.valid_evals[i].loss, f.valid_evals[i].loss);
    EXPECT_EQ(g.evals[i].loss, f.evals[i].loss);
  }
  EXPECT_EQ(f.valid_segments, g.valid_segments);
  // The /valid summary: its best, and the test accuracy at that eval.
  h5::Handle h = h5::open_file(d.path("gen.h5"));
  h5::Handle v = h5::open_group(h, "valid");
  size_t best = 0;
  for (size_t i = 1; i < g.valid_evals.size(); ++i)
    if (g.valid_evals[i].accuracy > g.valid_evals[best].accuracy) best = i;
  EXPECT_EQ(h5::read_attr_i64(v, "best_step"), g.valid_evals[best].step);
  EXPECT_FLOAT_EQ(float(h5::read_attr_f64(v, "best_accuracy")), g.valid_evals[best].accuracy);
  EXPECT_FLOAT_EQ(float(h5::read_attr_f64(v, "test_accuracy_at_best")), g.evals[best].accuracy);
  EXPECT_EQ(h5::read_attr_str(v, "split"), "valid");
  // --valid-out without mqar.valid names the option.
  auto [ec, eout] = statex("data" + kData + " --valid-out " + d.path("x.h5"));
  EXPECT_EQ(ec, 2) << eout;
  EXPECT_NE(eout.find("mqar.valid"), std::string::npos) << eout;
  EXPECT_FALSE(exists(d.path("x.h5")));
}

TEST(StatexData, ErrorsNameTheOptionAndWriteNothing) {
  testing::TempDir d("statex_tasks_cli");
  auto expect_error = [&](const std::string& args, const std::vector<std::string>& words) {
    auto [code, out] = statex(args);
    EXPECT_EQ(code, 2) << args << "\n" << out;
    for (const auto& w : words) EXPECT_NE(out.find(w), std::string::npos) << w << " in\n" << out;
    EXPECT_FALSE(exists(d.path("o.h5"))) << args;
  };
  expect_error("data" + kData, {"--train-out"});
  expect_error("data" + kData + " --train-out " + d.path("o.h5") + " --test-out " + d.path("o.h5"),
               {"--train-out", "--test-out"});
  expect_error("data" + kData + " --train-out " + d.path("o.h5") + " --show -1", {"--show"});
  expect_error("data --model.vocab_size 64 --mqar.train compositional:36:5:10 --train-out " +
                   d.path("o.h5"),
               {"mqar.train", "perfect square"});
  expect_error("train" + kData + kModel + " --data.train " + d.path("missing.h5") + " --out " +
                   d.path("o.h5"),
               {"data.train", "missing.h5"});
  auto [dc, dout] = statex("data" + kData + " --test-out " + d.path("te.h5") + " --show 0");
  ASSERT_EQ(dc, 0) << dout;
  // An existing file is replaced only with --overwrite.
  auto [again, again_out] = statex("data" + kData + " --test-out " + d.path("te.h5"));
  EXPECT_EQ(again, 2) << again_out;
  EXPECT_NE(again_out.find("--overwrite"), std::string::npos) << again_out;
  EXPECT_EQ(statex("data" + kData + " --test-out " + d.path("te.h5") + " --overwrite").first, 0);
  expect_error("train" + kData + kModel + " --data.test " + d.path("te.h5") + " --out " +
                   d.path("te.h5"),
               {"--data.test", "--out"});
  // The file holds tokens up to 63: a 40-token model cannot read it.
  expect_error("train" + kModel + " --model.vocab_size 40 --mqar.train 16:2:10 --mqar.test 16:2:4"
               " --data.test " + d.path("te.h5") + " --out " + d.path("o.h5"),
               {"data.test", "outside the model vocabulary"});
}

// `statex info` gives the three conventions: recurrent, recurrent+conv and zoology.
TEST(StateSize, InfoShowsRecurrentPlusConvTotals) {
  auto [code, out] = statex("info --model.d_model 16 --model.gate_low_rank 4 --model.n_layers 3 "
                            "--model.vocab_size 37");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("recurrent+conv scalars"), std::string::npos) << out;
  const size_t at = out.find("\ntotal");
  ASSERT_NE(at, std::string::npos) << out;
  std::istringstream row(out.substr(at + 6));
  long long state = 0, bytes = 0, conv = 0, both = 0, both_bytes = 0, zoo = 0, zoo_bytes = 0;
  row >> state >> bytes >> conv >> both >> both_bytes >> zoo >> zoo_bytes;
  // GLA D 16: Dk 8, Dv 16, H 2 -> 64 recurrent scalars a layer; short conv 3*(2*8+16) = 96.
  EXPECT_EQ(state, 3 * 64);
  EXPECT_EQ(conv, 3 * 96);
  EXPECT_EQ(both, 3 * (64 + 96));
  EXPECT_EQ(both_bytes, 4 * 3 * (64 + 96));
  // Zoology: key_dim * head_v_dim = 8 * 8, plus 4 x (8 + 8 + 16) for the three short convs.
  EXPECT_NE(out.find("zoology scalars"), std::string::npos) << out;
  EXPECT_EQ(zoo, 3 * (64 + 128));
  EXPECT_EQ(zoo_bytes, 4 * 3 * (64 + 128));
}

// `statex info --state zoology` on the quickstart GLA: 3,072 scalars, 12,288 bytes (issue #29).
TEST(StateSize, InfoZoologyQuickstart) {
  const char* src = std::getenv("STATEX_SOURCE_DIR");
  const std::string dir = src ? std::string(src) + "/" : std::string("../");
  auto [code, out] = statex("info --config " + dir + "experiments/quickstart.ini --state zoology");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("recurrent+conv scalars"), std::string::npos) << out;  // only the one asked
  const size_t at = out.find("\ntotal");
  ASSERT_NE(at, std::string::npos) << out;
  std::istringstream row(out.substr(at + 6));
  long long zoo = 0, zoo_bytes = 0;
  row >> zoo >> zoo_bytes;
  EXPECT_EQ(zoo, 3072);
  EXPECT_EQ(zoo_bytes, 12288);
  auto [bad, msg] = statex("info --state zoo");
  EXPECT_NE(bad, 0);
  EXPECT_NE(msg.find("--state: unknown state-size convention 'zoo'"), std::string::npos) << msg;
}

TEST(StatexData, HelpStatesTheZoologyDefault) {
  auto [code, out] = statex("train --help");
  ASSERT_EQ(code, 0);
  EXPECT_NE(out.find("--mqar.random_non_queries arg (=true)"), std::string::npos) << out;
  EXPECT_NE(out.find("Zoology"), std::string::npos);
  EXPECT_NE(out.find("--data.train"), std::string::npos);
  auto [dcode, dout] = statex("data --help");
  EXPECT_EQ(dcode, 0) << dout;
  EXPECT_NE(dout.find("--train-out"), std::string::npos);
}

}  // namespace
}  // namespace statex
