// HDF5 I/O: results, checkpoints, token files, eval output. Round trips are exact; every bad
// input must give an error that names the file and the problem.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>

#include "sim/core/config.h"
#include "sim/io/checkpoint.h"
#include "sim/io/h5.h"
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"
#include "sim/io/run_record.h"
#include "sim/io/token_file.h"
#include "tests/support/errors.h"

using namespace statex;
using statex::testing::error_of;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A fresh directory per test under /tmp, removed at the end.
class H5IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statex_h5io_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

bool file_exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

long file_size(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

// Runs fn, expects it to throw E, and returns the message.

// Float equality that treats NaN == NaN (bitwise identical values round-trip).
bool same(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

RunRecord full_record() {
  RunRecord r;
  r.status = "completed";
  r.failure_reason = "";
  r.arm = "statex";
  r.config = {{"model.d_model", "64"}, {"train.lr", "0.003"}, {"mqar.test", "64:4:100,128:8:50"}};
  r.config_ini = "[model]\nd_model = 64\n\n[train]\nlr = 0.003\n";
  r.git_commit = "abc123def456";
  r.compiler = "GNU 12.2.0";
  r.cxx_flags = "-O3 -march=native";
  r.build_type = "Release";
  r.device = "cpu";
  r.hostname = "node-7";
  r.cuda_enabled = true;
  r.omp_threads = 3;
  r.param_seed = 0xFFFFFFFFFFFFFFF1ull;  // above int64 range: must stay uint64
  r.train_data_seed = 17;
  r.test_data_seed = 1u << 31;
  r.model = "gla";
  r.n_params = 123457;
  r.state.layer_state_scalars = {1024, 4096, 1024};
  r.state.layer_conv_state_scalars = {384, 384, 385};
  r.state.layer_zoology_state_scalars = {1536, 4608, 1537};
  r.test_segments = {"64:4:100", "128:8:50"};
  r.gap_bucket_edges = {0, 8, 32, 128};
  for (int i = 1; i <= 5; ++i)
    r.curve.push_back({i * 10, 4.5f / i, 1e-3f * i, 0.7f + i, 12345.5f * i});
  for (int i = 0; i < 3; ++i) {
    EvalPoint e;
    e.step = i * 100;
    e.loss = 3.0f - i;
    e.accuracy = i == 1 ? 0.9f : 0.25f * i;  // best is the middle one
    e.segment_accuracy = {0.1f * i, 0.2f * i};
    e.gap_accuracy = {0.5f, kNaN, 0.125f * i, 1.0f};
    e.gap_count = {10, 0, 7 + i, 3};
    r.evals.push_back(e);
  }
  r.expansion.happened = true;
  r.expansion.step = 150;
  r.expansion.mode = "inherit";
  r.expansion.layers = {0, 2};
  r.expansion.state_scalars_before = 6144;
  r.expansion.state_scalars_after = 12288;
  r.expansion.params_before = 123000;
  r.expansion.params_after = 123457;
  r.expansion.accuracy_before = 0.4f;
  r.expansion.accuracy_after = 0.35f;
  r.expansion.accuracy_end = -1;
  r.steps_done = 300;
  r.wall_time_s = 12.345678901;
  r.tokens_seen = 1.5e9;
  r.resume_log = "resumed at step 100 from ck.h5\nresumed at step 200 from ck.h5; changed: train.threads: 1 -> 2";
  return r;
}

void expect_same(const RunRecord& a, const RunRecord& b) {
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.failure_reason, b.failure_reason);
  EXPECT_EQ(a.resume_log, b.resume_log);
  EXPECT_EQ(a.arm, b.arm);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.config_ini, b.config_ini);
  EXPECT_EQ(a.git_commit, b.git_commit);
  EXPECT_EQ(a.compiler, b.compiler);
  EXPECT_EQ(a.cxx_flags, b.cxx_flags);
  EXPECT_EQ(a.build_type, b.build_type);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.hostname, b.hostname);
  EXPECT_EQ(a.cuda_enabled, b.cuda_enabled);
  EXPECT_EQ(a.omp_threads, b.omp_threads);
  EXPECT_EQ(a.param_seed, b.param_seed);
  EXPECT_EQ(a.train_data_seed, b.train_data_seed);
  EXPECT_EQ(a.test_data_seed, b.test_data_seed);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.n_params, b.n_params);
  EXPECT_EQ(a.state.layer_state_scalars, b.state.layer_state_scalars);
  EXPECT_EQ(a.state.layer_conv_state_scalars, b.state.layer_conv_state_scalars);
  EXPECT_EQ(a.state.layer_zoology_state_scalars, b.state.layer_zoology_state_scalars);
  EXPECT_EQ(a.test_segments, b.test_segments);
  EXPECT_EQ(a.gap_bucket_edges, b.gap_bucket_edges);
  ASSERT_EQ(a.curve.size(), b.curve.size());
  for (size_t i = 0; i < a.curve.size(); ++i) {
    EXPECT_EQ(a.curve[i].step, b.curve[i].step);
    EXPECT_TRUE(same(a.curve[i].loss, b.curve[i].loss));
    EXPECT_TRUE(same(a.curve[i].lr, b.curve[i].lr));
    EXPECT_TRUE(same(a.curve[i].grad_norm, b.curve[i].grad_norm));
    EXPECT_TRUE(same(a.curve[i].tokens_per_s, b.curve[i].tokens_per_s));
  }
  ASSERT_EQ(a.evals.size(), b.evals.size());
  for (size_t i = 0; i < a.evals.size(); ++i) {
    EXPECT_EQ(a.evals[i].step, b.evals[i].step);
    EXPECT_TRUE(same(a.evals[i].loss, b.evals[i].loss));
    EXPECT_TRUE(same(a.evals[i].accuracy, b.evals[i].accuracy));
    EXPECT_TRUE(same(a.evals[i].segment_accuracy, b.evals[i].segment_accuracy));
    EXPECT_TRUE(same(a.evals[i].gap_accuracy, b.evals[i].gap_accuracy)) << "eval " << i;
    EXPECT_EQ(a.evals[i].gap_count, b.evals[i].gap_count);
  }
  const ExpansionEvent &x = a.expansion, &y = b.expansion;
  EXPECT_EQ(x.happened, y.happened);
  EXPECT_EQ(x.step, y.step);
  EXPECT_EQ(x.mode, y.mode);
  EXPECT_EQ(x.layers, y.layers);
  EXPECT_EQ(x.state_scalars_before, y.state_scalars_before);
  EXPECT_EQ(x.state_scalars_after, y.state_scalars_after);
  EXPECT_EQ(x.params_before, y.params_before);
  EXPECT_EQ(x.params_after, y.params_after);
  EXPECT_TRUE(same(x.accuracy_before, y.accuracy_before));
  EXPECT_TRUE(same(x.accuracy_after, y.accuracy_after));
  EXPECT_TRUE(same(x.accuracy_end, y.accuracy_end));
  EXPECT_EQ(a.steps_done, b.steps_done);
  EXPECT_EQ(a.wall_time_s, b.wall_time_s);
  EXPECT_EQ(a.tokens_seen, b.tokens_seen);
}

// Opens a file read-write for tests that damage it on purpose. The integrity digests are
// re-stamped on close, so the structural check under test (not the checksum) must name the
// damage.
class RwFile {
 public:
  explicit RwFile(const std::string& p) : path_(p) {
    h5::silence_errors();
    hid_t id = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(id, 0) << p;
    f_ = h5::Handle(id, H5Fclose);
  }
  RwFile(RwFile&&) = default;
  ~RwFile() {
    if (f_.get() < 0) return;
    h5::write_digests(f_);
    f_.reset();
    h5::stamp_file_crc(path_);
  }
  operator hid_t() const { return f_.get(); }  // NOLINT: pass straight to H5 calls

 private:
  std::string path_;
  h5::Handle f_;
};
RwFile open_rw(const std::string& p) { return RwFile(p); }

// ---------------------------------------------------------------- results

TEST_F(H5IoTest, ResultsRoundTripEveryField) {
  RunRecord r = full_record();
  write_results(path("run.h5"), r);
  expect_same(r, read_results(path("run.h5")));
}

TEST_F(H5IoTest, ResultsRoundTripEmptyRunWithoutExpansion) {
  RunRecord r;  // running, no curve, no evals, no layers
  write_results(path("run.h5"), r);
  RunRecord back = read_results(path("run.h5"));
  expect_same(r, back);
  h5::Handle f = h5::open_file(path("run.h5"));
  EXPECT_FALSE(h5::exists(f, "statex"));
  EXPECT_TRUE(std::isnan(h5::read_attr_f64(f, "final_accuracy")));
  EXPECT_EQ(h5::read_attr_i64(f, "best_step"), -1);

  r.expansion.happened = true;  // an event with an empty layer list still round-trips
  r.expansion.mode = "reinit";
  write_results(path("run2.h5"), r);
  expect_same(r, read_results(path("run2.h5")));
}

// A record without the zoology count (read from a file written before it existed) writes none
// and reads back without one; it does not invent a number.
TEST_F(H5IoTest, ResultsWithoutZoologyCountWriteNone) {
  RunRecord r = full_record();
  r.state.layer_zoology_state_scalars.clear();
  write_results(path("old.h5"), r);
  h5::Handle f = h5::open_file(path("old.h5"));
  h5::Handle m = h5::open_group(f, "model");
  EXPECT_FALSE(h5::has_attr(m, "zoology_state_scalars"));
  EXPECT_FALSE(h5::exists(m, "layer_zoology_state_scalars"));
  EXPECT_TRUE(read_results(path("old.h5")).state.layer_zoology_state_scalars.empty());
}

TEST_F(H5IoTest, ResultsLayoutSummaryAndUnits) {
  RunRecord r = full_record();
  write_results(path("run.h5"), r);
  h5::Handle f = h5::open_file(path("run.h5"));
  EXPECT_EQ(h5::read_attr_str(f, "format"), "statex-sim results");
  EXPECT_EQ(h5::read_attr_i64(f, "format_version"), kResultsFormatVersion);
  EXPECT_FLOAT_EQ(h5::read_attr_f64(f, "final_accuracy"), 0.5f);
  EXPECT_FLOAT_EQ(h5::read_attr_f64(f, "best_accuracy"), 0.9f);
  EXPECT_EQ(h5::read_attr_i64(f, "best_step"), 100);
  EXPECT_EQ(h5::read_attr_str(f, "wall_time_s_unit"), "s");
  h5::Handle m = h5::open_group(f, "model");
  EXPECT_EQ(h5::read_attr_i64(m, "state_scalars"), 6144);
  EXPECT_EQ(h5::read_attr_i64(m, "state_bytes"), 4 * 6144);
  EXPECT_EQ(h5::read_attr_i64(m, "conv_state_scalars"), 1153);
  EXPECT_EQ(h5::read_attr_i64(m, "conv_state_bytes"), 4 * 1153);
  EXPECT_EQ(h5::read_attr_i64(m, "zoology_state_scalars"), 7681);
  EXPECT_EQ(h5::read_attr_i64(m, "zoology_state_bytes"), 4 * 7681);
  EXPECT_EQ(h5::read_dataset<int64_t>(m, "layer_zoology_state_bytes"),
            (std::vector<int64_t>{4 * 1536, 4 * 4608, 4 * 1537}));
  EXPECT_EQ(h5::read_attr_str(m, "n_params_unit"), "scalars");
  EXPECT_EQ(h5::read_dataset<int64_t>(m, "layer_state_bytes"),
            (std::vector<int64_t>{4096, 16384, 4096}));
  for (const char* d : {"layer_state_scalars", "layer_conv_state_scalars",
                        "layer_zoology_state_scalars"})
    EXPECT_EQ(h5::read_attr_str(h5::open_dataset(m, d), "unit"), "scalars") << d;
  EXPECT_EQ(h5::read_attr_str(h5::open_dataset(m, "layer_state_bytes"), "unit"), "bytes");
  h5::Handle e = h5::open_group(f, "eval");
  EXPECT_EQ(h5::dataset_shape(e, "segment_accuracy"), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(h5::dataset_shape(e, "gap_accuracy"), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(h5::read_attr_str(h5::open_dataset(e, "segment_accuracy"), "segments"),
            "64:4:100,128:8:50");
  EXPECT_EQ(h5::read_attr_str(h5::open_dataset(e, "gap_bucket_edges"), "unit"), "tokens");
  h5::Handle c = h5::open_group(f, "config");
  EXPECT_EQ(h5::read_attr_str(c, "model.d_model"), "64");
}

// Plateau escape (docs/results_format.md): K = smallest test K, threshold min(3/K, (1+1/K)/2),
// escape_step = first eval strictly above it, -1 when none.
TEST_F(H5IoTest, ResultsPlateauEscapeFromTheEvalCurve) {
  auto escape = [&](std::vector<std::string> segments, std::vector<float> accs,
                    int64_t* k = nullptr, double* threshold = nullptr) {
    RunRecord r;
    r.test_segments = std::move(segments);
    for (size_t i = 0; i < accs.size(); ++i) {
      EvalPoint e;
      e.step = 50 * static_cast<int64_t>(i);
      e.accuracy = accs[i];
      r.evals.push_back(e);
    }
    write_results(path("plateau.h5"), r);
    h5::Handle f = h5::open_file(path("plateau.h5"));
    if (k) *k = h5::read_attr_i64(f, "plateau_num_kv");
    if (threshold) *threshold = h5::read_attr_f64(f, "plateau_threshold");
    EXPECT_EQ(h5::read_attr_str(f, "escape_step_unit"), "steps");
    return h5::read_attr_i64(f, "escape_step");
  };
  int64_t k = 0;
  double threshold = 0;
  // K = 8 (smallest of 8 and 16): threshold 3/8; 0.375 itself is a tie and does not escape.
  EXPECT_EQ(escape({"128:16:10", "64:8:10"}, {0.0f, 0.375f, 0.376f, 0.2f}, &k, &threshold), 100);
  EXPECT_EQ(k, 8);
  EXPECT_DOUBLE_EQ(threshold, 0.375);
  EXPECT_EQ(escape({"64:8:10"}, {0.0f, 0.125f, 0.3f}), -1);  // never above: stuck on the plateau
  EXPECT_EQ(escape({"64:8:10"}, {kNaN, 0.9f}), 50);           // a NaN eval is not an escape
  // K = 2: 3/K would be unreachable, so the cap (1 + 1/2)/2 = 0.75 applies.
  EXPECT_EQ(escape({"64:2:10"}, {0.7f, 0.75f, 0.8f}, &k, &threshold), 100);
  EXPECT_DOUBLE_EQ(threshold, 0.75);
  // No segment: K unknown, NaN threshold, never escapes.
  EXPECT_EQ(escape({}, {0.9f}, &k, &threshold), -1);
  EXPECT_EQ(k, -1);
  EXPECT_TRUE(std::isnan(threshold));
}

TEST_F(H5IoTest, ResultsWriteLeavesNoTmpAndOverwriteStaysReadable) {
  const std::string p = path("run.h5");
  RunRecord r = full_record();
  write_results(p, r);
  EXPECT_FALSE(file_exists(p + ".tmp"));
  r.status = "failed";
  r.failure_reason = "non-finite loss at step 312";
  r.evals.pop_back();
  write_results(p, r);  // overwrite
  EXPECT_FALSE(file_exists(p + ".tmp"));
  RunRecord back = read_results(p);
  EXPECT_EQ(back.status, "failed");
  EXPECT_EQ(back.failure_reason, "non-finite loss at step 312");
  EXPECT_EQ(back.evals.size(), 2u);
}

TEST_F(H5IoTest, ResultsFailedWriteKeepsThePreviousFile) {
  const std::string p = path("run.h5");
  write_results(p, full_record());
  RunRecord bad = full_record();
  bad.evals[1].segment_accuracy.push_back(0.5f);  // ragged [E, nseg]: refused mid-write
  std::string msg = error_of<std::runtime_error>([&] { write_results(p, bad); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "segment_accuracy");
  EXPECT_FALSE(file_exists(p + ".tmp"));
  expect_same(full_record(), read_results(p));  // the old good file is intact
}

TEST_F(H5IoTest, ResultsIntoMissingDirectoryThrowsAndLeavesNothing) {
  const std::string p = path("no_such_dir/run.h5");
  std::string msg = error_of<std::runtime_error>([&] { write_results(p, full_record()); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "does not exist");
  EXPECT_FALSE(file_exists(p));
  EXPECT_FALSE(file_exists(p + ".tmp"));
}

TEST_F(H5IoTest, ResultsIntoUnwritableDirectoryThrows) {
  if (geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  ASSERT_EQ(mkdir(path("ro").c_str(), 0555), 0);
  std::string msg =
      error_of<std::runtime_error>([&] { write_results(path("ro/run.h5"), full_record()); });
  EXPECT_CONTAINS(msg, "not writable");
}

TEST_F(H5IoTest, CheckWritableNamesTheOptionAndReason) {
  std::string msg = error_of<ConfigError>([&] { check_writable(path("nope/run.h5"), "--out"); });
  EXPECT_CONTAINS(msg, "--out");
  EXPECT_CONTAINS(msg, path("nope/run.h5"));
  EXPECT_CONTAINS(msg, "does not exist");
  msg = error_of<ConfigError>([&] { check_writable(dir_, "--out"); });
  EXPECT_CONTAINS(msg, "is a directory");
  std::ofstream(path("plain")) << "x";
  msg = error_of<ConfigError>([&] { check_writable(path("plain/run.h5")); });
  EXPECT_CONTAINS(msg, "not a directory");
  EXPECT_NO_THROW(check_writable(path("ok.h5")));
  EXPECT_FALSE(file_exists(path("ok.h5")));
  EXPECT_FALSE(file_exists(path("ok.h5.tmp")));
}

TEST_F(H5IoTest, ResultsReaderRefusesOtherVersionAndFormat) {
  const std::string p = path("run.h5");
  write_results(p, full_record());
  {
    auto f = open_rw(p);
    h5::write_attr(f, "format_version", int32_t{2});
  }
  std::string msg = error_of<std::runtime_error>([&] { read_results(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "format_version");
  EXPECT_CONTAINS(msg, "2");
  {
    auto f = open_rw(p);
    h5::write_attr(f, "format_version", int32_t{1});
    h5::write_attr(f, "format", "something else");
  }
  msg = error_of<std::runtime_error>([&] { read_results(p); });
  EXPECT_CONTAINS(msg, "'format'");
  EXPECT_CONTAINS(msg, "something else");
  msg = error_of<std::runtime_error>([&] { read_results(path("missing.h5")); });
  EXPECT_CONTAINS(msg, "does not exist");
}

// ---------------------------------------------------------------- checkpoints

ModelConfig expanded_mamba2() {
  ModelConfig m;
  m.model = "mamba2";
  m.d_model = 60;
  m.n_layers = 3;
  m.head_dim = 15;   // Hm = 2*60/15 = 8
  m.d_state = 12;
  m.mlp = true;
  m.norm_eps = 1e-6f;
  m.layers = {{8, 12}, {8, 48}, {8, 12}};  // layer 1 expanded by StateX (state_mult 4)
  return m;
}

// Table with dotted PyTorch names, deliberately not in alphabetical order; a scalar too.
ParamTable odd_table() {
  ParamTable t;
  t.add("layers.1.mixer.in_proj.weight", {37, 60});
  t.add("embeddings.weight", {29, 60});
  t.add("layers.0.attn.q_proj.weight", {30, 60});
  t.add("layers.0.mixer.A_log", {8});
  t.add("layers.0.mixer.conv1d.weight", {7, 1, 4});
  t.add("norm_f.scale", {});
  return t;
}

std::vector<float> random_floats(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  if (n > 3) {
    v[0] = -0.0f;
    v[1] = std::numeric_limits<float>::denorm_min();
    v[2] = std::numeric_limits<float>::max();
  }
  return v;
}

Checkpoint full_checkpoint() {
  Checkpoint ck;
  ck.model = expanded_mamba2();
  ck.step = 4321;
  ck.table = odd_table();
  ck.params = random_floats(ck.table.total(), 1);
  ck.exp_avg = random_floats(ck.table.total(), 2);
  ck.exp_avg_sq = random_floats(ck.table.total(), 3);
  for (float& x : ck.exp_avg_sq) x = x * x;
  ck.has_optimizer = true;
  TrainerState ts;
  ts.config_ini = "[train]\nsteps = 10\n";
  ts.schedule_start = 150;
  ts.schedule_length = 300;
  ts.schedule_warmup = 7;
  ts.tensor_steps = {3, 0, 12345678901};
  ts.statex_event_step = 150;
  ts.wall_time_s = 12.375;
  ts.tokens_seen = 2.5e6;
  ck.trainer = ts;
  ck.expansion = ExpansionOrigin{{0, 2}, "inherit", "small.h5"};
  return ck;
}

void expect_same_table(const ParamTable& a, const ParamTable& b) {
  ASSERT_EQ(a.entries().size(), b.entries().size());
  for (size_t i = 0; i < a.entries().size(); ++i) {
    EXPECT_EQ(a.entries()[i].name, b.entries()[i].name);
    EXPECT_EQ(a.entries()[i].shape, b.entries()[i].shape);
    EXPECT_EQ(a.entries()[i].offset, b.entries()[i].offset);
  }
}

TEST_F(H5IoTest, CheckpointRoundTripIsBitExact) {
  Checkpoint ck = full_checkpoint();
  save_checkpoint(path("ck.h5"), ck);
  EXPECT_FALSE(file_exists(path("ck.h5.tmp")));
  // The odd table is not the mamba2 model's own layout, so it is passed as the expected one.
  ParamTable odd = odd_table();
  Checkpoint back = load_checkpoint(path("ck.h5"), &odd);
  EXPECT_EQ(back.step, ck.step);
  expect_same_table(ck.table, back.table);  // creation order kept, so same offsets
  EXPECT_TRUE(same(back.params, ck.params));
  EXPECT_TRUE(back.has_optimizer);
  EXPECT_TRUE(same(back.exp_avg, ck.exp_avg));
  EXPECT_TRUE(same(back.exp_avg_sq, ck.exp_avg_sq));
  ASSERT_TRUE(back.trainer.has_value());
  EXPECT_EQ(back.trainer->config_ini, ck.trainer->config_ini);
  EXPECT_EQ(back.trainer->schedule_start, 150);
  EXPECT_EQ(back.trainer->schedule_length, 300);
  EXPECT_EQ(back.trainer->schedule_warmup, 7);
  EXPECT_EQ(back.trainer->tensor_steps, ck.trainer->tensor_steps);
  EXPECT_EQ(back.trainer->statex_event_step, 150);
  EXPECT_EQ(back.trainer->wall_time_s, 12.375);
  EXPECT_EQ(back.trainer->tokens_seen, 2.5e6);
  ASSERT_TRUE(back.expansion.has_value());
  EXPECT_EQ(back.expansion->layers, ck.expansion->layers);
  EXPECT_EQ(back.expansion->mode, "inherit");
  EXPECT_EQ(back.expansion->source, "small.h5");
  EXPECT_EQ(to_map(back.model), to_map(ck.model));
  EXPECT_EQ(back.model.model, "mamba2");
  ASSERT_EQ(back.model.layers.size(), 3u);
  EXPECT_EQ(back.model.layers[1].d_state, 48);
  EXPECT_EQ(back.model.layers[1].heads, 8);
  EXPECT_TRUE(model_mismatches(back.model, ck.model).empty());

  h5::Handle f = h5::open_file(path("ck.h5"));
  EXPECT_EQ(h5::read_dataset<int32_t>(f, "model/layer_d_state"), (std::vector<int32_t>{12, 48, 12}));
  EXPECT_EQ(h5::dataset_shape(f, "params/layers.0.mixer.conv1d.weight"),
            (std::vector<int64_t>{7, 1, 4}));
  EXPECT_EQ(h5::dataset_shape(f, "params/norm_f.scale"), (std::vector<int64_t>{}));
}

TEST_F(H5IoTest, CheckpointDefaultShapesWeightsOnlyAndExpectedTable) {
  Checkpoint ck = full_checkpoint();
  ck.model = ModelConfig();  // GLA defaults, no per-layer shapes
  ck.has_optimizer = false;
  ck.exp_avg.clear();
  ck.exp_avg_sq.clear();
  save_checkpoint(path("w.h5"), ck);
  ParamTable expected = odd_table();
  Checkpoint back = load_checkpoint(path("w.h5"), &expected);
  EXPECT_FALSE(back.has_optimizer);
  EXPECT_TRUE(back.exp_avg.empty());
  EXPECT_TRUE(back.model.layers.empty());  // default shapes read back as "no override"
  EXPECT_EQ(h5::read_dataset<int32_t>(h5::open_file(path("w.h5")), "model/layer_heads"),
            (std::vector<int32_t>{2, 2}));
  EXPECT_TRUE(same(back.params, ck.params));
  EXPECT_FALSE(h5::exists(h5::open_file(path("w.h5")), "optim"));
}

TEST_F(H5IoTest, CheckpointSaveRefusesWrongBufferSize) {
  Checkpoint ck = full_checkpoint();
  ck.exp_avg.pop_back();
  std::string msg = error_of<std::runtime_error>([&] { save_checkpoint(path("ck.h5"), ck); });
  EXPECT_CONTAINS(msg, "exp_avg");
  EXPECT_FALSE(file_exists(path("ck.h5")));
}

TEST_F(H5IoTest, BadCheckpointMissingNotHdf5Truncated) {
  std::string p = path("missing.h5");
  std::string msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "does not exist");

  p = path("text.h5");
  std::ofstream(p) << "this is not hdf5\n";
  msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "not an HDF5 file");

  p = path("trunc.h5");
  save_checkpoint(p, full_checkpoint());
  long size = file_size(p);
  ASSERT_GT(size, 1000);
  ASSERT_EQ(truncate(p.c_str(), size / 2), 0);
  msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "truncated");
}

TEST_F(H5IoTest, HdfErrorStackIsNotPrinted) {
  std::string p = path("trunc.h5");
  save_checkpoint(p, full_checkpoint());
  ASSERT_EQ(truncate(p.c_str(), file_size(p) / 2), 0);
  ::testing::internal::CaptureStderr();
  EXPECT_THROW(load_checkpoint(p), ConfigError);
  EXPECT_THROW(write_results(path("missing/run.h5"), RunRecord()), std::runtime_error);
  EXPECT_THROW(read_results(p), std::runtime_error);
  std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "") << "HDF5 printed its error stack";
}

TEST_F(H5IoTest, BadCheckpointWrongFormatOrVersion) {
  std::string p = path("run.h5");
  write_results(p, full_record());
  std::string msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "'format'");
  EXPECT_CONTAINS(msg, "results file");

  p = path("ck.h5");
  save_checkpoint(p, full_checkpoint());
  { h5::write_attr(open_rw(p), "format_version", int32_t{7}); }
  msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "format_version");
  EXPECT_CONTAINS(msg, "7");
}

TEST_F(H5IoTest, BadCheckpointMissingParameterDatasets) {
  std::string p = path("ck.h5");
  save_checkpoint(p, full_checkpoint());
  {
    auto f = open_rw(p);
    ASSERT_GE(H5Ldelete(f, "optim/exp_avg_sq/layers.0.mixer.A_log", H5P_DEFAULT), 0);
  }
  ParamTable odd = odd_table();
  std::string msg = error_of<ConfigError>([&] { load_checkpoint(p, &odd); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "missing parameter dataset '/optim/exp_avg_sq/layers.0.mixer.A_log'");

  save_checkpoint(p, full_checkpoint());
  { ASSERT_GE(H5Ldelete(open_rw(p), "params/embeddings.weight", H5P_DEFAULT), 0); }
  ParamTable expected = odd_table();
  msg = error_of<ConfigError>([&] { load_checkpoint(p, &expected); });
  EXPECT_CONTAINS(msg, "missing parameter dataset '/params/embeddings.weight'");

  save_checkpoint(p, full_checkpoint());
  { ASSERT_GE(H5Ldelete(open_rw(p), "params", H5P_DEFAULT), 0); }
  msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, "missing group '/params'");
}

TEST_F(H5IoTest, BadCheckpointShapeMismatches) {
  std::string p = path("ck.h5");
  save_checkpoint(p, full_checkpoint());
  ParamTable wrong, right = odd_table();
  for (const ParamEntry& e : right.entries())
    wrong.add(e.name, e.name == "layers.0.attn.q_proj.weight" ? std::vector<int64_t>{60, 30}
                                                              : e.shape);
  std::string msg = error_of<ConfigError>([&] { load_checkpoint(p, &wrong); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "'/params/layers.0.attn.q_proj.weight' has shape [30, 60], expected [60, 30]");

  ParamTable fewer;  // the file holds a parameter this model does not have
  fewer.add("embeddings.weight", {29, 60});
  msg = error_of<ConfigError>([&] { load_checkpoint(p, &fewer); });
  EXPECT_CONTAINS(msg, "not a parameter of this model");

  {  // a moment whose shape differs from its parameter
    auto f = open_rw(p);
    ASSERT_GE(H5Ldelete(f, "optim/exp_avg/layers.0.mixer.A_log", H5P_DEFAULT), 0);
    h5::Handle g = h5::open_group(f, "optim/exp_avg");
    std::vector<float> nine(9, 1.0f);
    h5::write_dataset(g, "layers.0.mixer.A_log", nine);
  }
  msg = error_of<ConfigError>([&] { load_checkpoint(p, &right); });
  EXPECT_CONTAINS(msg, "'/optim/exp_avg/layers.0.mixer.A_log' has shape [9], expected [8]");

  save_checkpoint(p, full_checkpoint());
  {  // per-layer shape list of the wrong length
    auto f = open_rw(p);
    ASSERT_GE(H5Ldelete(f, "model/layer_heads", H5P_DEFAULT), 0);
    h5::Handle m = h5::open_group(f, "model");
    h5::write_dataset(m, "layer_heads", std::vector<int32_t>{8, 8});
  }
  msg = error_of<ConfigError>([&] { load_checkpoint(p); });
  EXPECT_CONTAINS(msg, "layer_heads");
  EXPECT_CONTAINS(msg, "n_layers = 3");
}

TEST_F(H5IoTest, CheckCompatibleNamesEveryMismatchingOption) {
  Checkpoint ck = full_checkpoint();
  ModelConfig other = ck.model;
  EXPECT_NO_THROW(check_compatible(ck, other, "ck.h5"));
  other.d_model = 64;
  other.layers[1].d_state = 12;
  std::string msg = error_of<ConfigError>([&] { check_compatible(ck, other, "ck.h5"); });
  EXPECT_CONTAINS(msg, "ck.h5");
  EXPECT_CONTAINS(msg, "model.d_model: 60 in the checkpoint, 64 expected");
  EXPECT_CONTAINS(msg, "layer 1 d_state: 48 in the checkpoint, 12 expected");
  other = ck.model;
  other.model = "gla";
  msg = error_of<ConfigError>([&] { check_compatible(ck, other, "ck.h5"); });
  EXPECT_CONTAINS(msg, "mamba2");
}

// ---------------------------------------------------------------- token files, eval output

TokenFile small_tokens(bool labels) {
  TokenFile tf;
  tf.num_examples = 3;
  tf.seq_len = 7;
  for (int i = 0; i < 21; ++i) tf.tokens.push_back((i * 37) % 50);
  tf.has_labels = labels;
  if (labels)
    for (int i = 0; i < 21; ++i) tf.labels.push_back(i % 3 == 0 ? (i * 11) % 50 : kIgnoreLabel);
  return tf;
}

TEST_F(H5IoTest, TokenFileRoundTrip) {
  for (bool labels : {true, false}) {
    TokenFile tf = small_tokens(labels);
    write_token_file(path("t.h5"), tf);
    TokenFile back = read_token_file(path("t.h5"));
    EXPECT_EQ(back.num_examples, 3);
    EXPECT_EQ(back.seq_len, 7);
    EXPECT_EQ(back.tokens, tf.tokens);
    EXPECT_EQ(back.has_labels, labels);
    EXPECT_EQ(back.labels, tf.labels);
    EXPECT_NO_THROW(check_token_range(back, 50, path("t.h5")));
  }
}

TEST_F(H5IoTest, TokenFileWithoutFormatAttrAndInt64IsAccepted) {
  // What a user writes with h5py: just /tokens as int64.
  {
    h5::Handle f = h5::create_file(path("py.h5"));
    std::vector<int64_t> t = {1, 2, 3, 4, 5, 6};
    h5::write_dataset<int64_t>(f, "tokens", t.data(), {2, 3});
  }
  TokenFile tf = read_token_file(path("py.h5"));
  EXPECT_EQ(tf.tokens, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_FALSE(tf.has_labels);
}

TEST_F(H5IoTest, BadTokenFiles) {
  std::string p = path("none.h5");
  std::string msg = error_of<ConfigError>([&] { read_token_file(p); });
  EXPECT_CONTAINS(msg, "token file '" + p + "'");
  EXPECT_CONTAINS(msg, "does not exist");

  p = path("empty.h5");
  { h5::Handle f = h5::create_file(p); }
  msg = error_of<ConfigError>([&] { read_token_file(p); });
  EXPECT_CONTAINS(msg, "no '/tokens' dataset");

  p = path("float.h5");
  {
    h5::Handle f = h5::create_file(p);
    std::vector<float> t(6, 1.0f);
    h5::write_dataset<float>(f, "tokens", t.data(), {2, 3});
  }
  msg = error_of<ConfigError>([&] { read_token_file(p); });
  EXPECT_CONTAINS(msg, "must hold integers");

  p = path("flat.h5");
  { h5::write_dataset(h5::create_file(p), "tokens", std::vector<int32_t>{1, 2, 3}); }
  msg = error_of<ConfigError>([&] { read_token_file(p); });
  EXPECT_CONTAINS(msg, "must be 2-D");

  p = path("labels.h5");
  {
    h5::Handle f = h5::create_file(p);
    std::vector<int32_t> t(6, 1), l(4, 1);
    h5::write_dataset<int32_t>(f, "tokens", t.data(), {2, 3});
    h5::write_dataset<int32_t>(f, "labels", l.data(), {2, 2});
  }
  msg = error_of<ConfigError>([&] { read_token_file(p); });
  EXPECT_CONTAINS(msg, "'/labels' has shape [2, 2] but '/tokens' has [2, 3]");

  TokenFile tf = small_tokens(true);
  tf.tokens[9] = 50;
  msg = error_of<ConfigError>([&] { check_token_range(tf, 50, "x.h5"); });
  EXPECT_CONTAINS(msg, "token 50 at example 1, position 2");
  tf = small_tokens(true);
  tf.labels[3] = -1;
  msg = error_of<ConfigError>([&] { check_token_range(tf, 50, "x.h5"); });
  EXPECT_CONTAINS(msg, "label -1 at example 0, position 3");
}

TEST_F(H5IoTest, EvalOutputRoundTripBothModes) {
  EvalOutput o;
  o.checkpoint = "ck.h5";
  o.token_file = "t.h5";
  o.num_examples = 2, o.seq_len = 3, o.vocab_size = 5;
  o.predictions = {0, 1, 2, 3, 4, 0};
  o.all_positions = false;
  o.positions = {0, 1, 1, 2};  // two labelled positions
  o.logits = random_floats(2 * 5, 9);
  o.has_labels = true;
  o.labelled_positions = 2;
  o.accuracy = 0.5f, o.token_accuracy = 0.5f, o.loss = 1.25f;
  o.example_accuracy = {1.0f, 0.0f};
  write_eval_output(path("e.h5"), o);
  EvalOutput b = read_eval_output(path("e.h5"));
  EXPECT_EQ(b.checkpoint, "ck.h5");
  EXPECT_EQ(b.token_file, "t.h5");
  EXPECT_EQ(b.num_examples, 2);
  EXPECT_EQ(b.seq_len, 3);
  EXPECT_EQ(b.vocab_size, 5);
  EXPECT_EQ(b.predictions, o.predictions);
  EXPECT_EQ(b.positions, o.positions);
  EXPECT_TRUE(same(b.logits, o.logits));
  EXPECT_TRUE(same(b.example_accuracy, o.example_accuracy));
  EXPECT_EQ(b.labelled_positions, 2);
  EXPECT_FLOAT_EQ(b.accuracy, 0.5f);
  EXPECT_FLOAT_EQ(b.loss, 1.25f);

  o.all_positions = true;  // logits everywhere, no labels
  o.positions.clear();
  o.logits = random_floats(2 * 3 * 5, 10);
  o.has_labels = false;
  o.example_accuracy.clear();
  o.accuracy = o.token_accuracy = o.loss = kNaN;
  write_eval_output(path("e.h5"), o);
  b = read_eval_output(path("e.h5"));
  EXPECT_TRUE(b.all_positions);
  EXPECT_TRUE(same(b.logits, o.logits));
  EXPECT_TRUE(std::isnan(b.accuracy));
  EXPECT_EQ(h5::dataset_shape(h5::open_file(path("e.h5")), "logits"),
            (std::vector<int64_t>{2, 3, 5}));

  o.logits.pop_back();
  std::string msg = error_of<std::runtime_error>([&] { write_eval_output(path("e2.h5"), o); });
  EXPECT_CONTAINS(msg, "logits");
  EXPECT_FALSE(file_exists(path("e2.h5")));
}

// ---------------------------------------------------------------- interoperability

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

TEST_F(H5IoTest, FilesAreReadableByH5dump) {
  int status = -1;
  run_capture("h5dump --version 2>/dev/null", &status);
  if (status != 0) GTEST_SKIP() << "h5dump not installed";
  write_results(path("run.h5"), full_record());
  save_checkpoint(path("ck.h5"), full_checkpoint());

  std::string out = run_capture("h5dump -A '" + path("run.h5") + "' 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_CONTAINS(out, "\"statex-sim results\"");
  EXPECT_CONTAINS(out, "ATTRIBUTE \"best_step\"");
  out = run_capture("h5dump -d /eval/gap_count '" + path("run.h5") + "' 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_CONTAINS(out, "( 3, 4 )");
  out = run_capture("h5dump -d '/params/layers.0.mixer.A_log' '" + path("ck.h5") + "' 2>&1",
                    &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_CONTAINS(out, "( 8 )");
}


// ---- the overwrite / rollback protocol (output_guard.h), state by state ----
// Each case starts from a state a SIGKILL can leave between two of the protocol's calls, and
// checks that the last completed file survives what the next run does.

void results_with(const std::string& path, const std::string& status, uint64_t seed) {
  RunRecord r;
  r.status = status;
  r.param_seed = seed;
  write_results(path, r);
}

uint64_t seed_at(const std::string& path) { return read_results(path).param_seed; }
bool there(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

TEST_F(H5IoTest, ProtocolKeptFileSurvivesAnUnfinishedRecordAndAFailure) {
  const std::string p = path("r.h5"), prev = p + ".prev";
  results_with(prev, "completed", 1);  // kept by an interrupted run ...
  results_with(p, "interrupted", 2);   // ... whose record is here
  ReplacedFile f(p, ReplacedFile::Mode::replace);
  EXPECT_EQ(seed_at(prev), 1u) << "the unfinished record replaced the kept completed file";
  results_with(p, "failed", 3);  // the new run fails
  EXPECT_NE(f.fail().find("put back"), std::string::npos);
  EXPECT_EQ(seed_at(p), 1u);
  EXPECT_EQ(read_results(p).status, "completed");
  EXPECT_EQ(seed_at(p + ".failed"), 3u);
  EXPECT_FALSE(there(prev));
}

TEST_F(H5IoTest, ProtocolNewerCompletedFileReplacesTheKeptOne) {
  // Killed after its final write, before dropping .prev: the file at r.h5 is the newest.
  const std::string p = path("r.h5"), prev = p + ".prev";
  results_with(prev, "completed", 1);
  results_with(p, "completed", 2);
  ReplacedFile f(p, ReplacedFile::Mode::replace);
  EXPECT_EQ(seed_at(prev), 2u);
  results_with(p, "failed", 3);
  f.fail();
  EXPECT_EQ(seed_at(p), 2u);
}

TEST_F(H5IoTest, ProtocolKilledInsideFailOrLink) {
  // Killed between fail()'s two renames: nothing at r.h5, the completed file at .prev.
  const std::string p = path("r.h5"), prev = p + ".prev";
  results_with(prev, "completed", 1);
  EXPECT_THROW(refuse_existing("--out", p, /*overwrite=*/false), ConfigError);
  {
    ReplacedFile f(p, ReplacedFile::Mode::replace);
    EXPECT_TRUE(f.has_previous());
    results_with(p, "failed", 2);
    f.fail();
    EXPECT_EQ(seed_at(p), 1u);
  }
  // Killed inside link_atomically: a stale .prev.tmp is replaced, .prev never half made.
  ::unlink(prev.c_str());
  results_with(prev + ".tmp", "running", 9);
  ReplacedFile g(p, ReplacedFile::Mode::replace);
  EXPECT_EQ(seed_at(prev), 1u);
  EXPECT_FALSE(there(prev + ".tmp"));
  results_with(p, "completed", 4);
  g.complete();
  EXPECT_FALSE(there(prev));
  EXPECT_EQ(seed_at(p), 4u);
}

TEST_F(H5IoTest, ProtocolResumeKeepsTheKeptFileAndBacksUpACompletedOne) {
  const std::string p = path("r.h5"), prev = p + ".prev";
  results_with(prev, "completed", 1);
  results_with(p, "interrupted", 2);  // the run being resumed
  {
    ReplacedFile f(p, ReplacedFile::Mode::continue_own);
    EXPECT_EQ(seed_at(prev), 1u);
    results_with(p, "failed", 2);
    f.fail();
    EXPECT_EQ(seed_at(p), 1u);
  }
  // A resume (with --overwrite) into a completed file: that file is kept until it completes.
  ::unlink(prev.c_str());
  ReplacedFile g(p, ReplacedFile::Mode::continue_own);
  EXPECT_EQ(seed_at(prev), 1u);
  results_with(p, "failed", 5);
  g.fail();
  EXPECT_EQ(seed_at(p), 1u);
}

}  // namespace
