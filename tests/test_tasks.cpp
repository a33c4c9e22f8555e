// Task variants (sim/task/tasks.*, docs/tasks.md): forgetting MQAR, compositional MQAR and the
// multi-pass context, checked on generated data; their per-task metrics; the segment syntax and
// its errors; and the token-file dataset (sim/task/token_dataset.*) against the generator.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/options.h"
#include "sim/io/token_file.h"
#include "sim/task/metrics.h"
#include "sim/task/mqar.h"
#include "sim/task/token_dataset.h"
#include "tests/support/gap_stats.h"
#include "tests/support/model_harness.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

struct Example {
  std::vector<int> inputs, targets, distance, query_class;
  bool operator==(const Example& o) const {
    return inputs == o.inputs && targets == o.targets && distance == o.distance &&
           query_class == o.query_class;
  }
};

Example get(const Dataset& ds, long index) {
  const int T = ds.seq_len(index);
  Example e{std::vector<int>(T), std::vector<int>(T), std::vector<int>(T), std::vector<int>(T)};
  ds.example(index, ExampleRow{e.inputs.data(), e.targets.data(), e.distance.data(),
                               e.query_class.data()});
  return e;
}

MqarSegment segment(const std::string& text) { return parse_segments(text, "mqar.train").at(0); }

MqarDataset dataset(const std::string& segs, int V, float power_a = 0.01f, bool rnq = true,
                    uint64_t seed = 7, Split split = Split::train) {
  return MqarDataset(parse_segments(segs, "mqar.train"), V, power_a, rnq, seed, split);
}

std::vector<int> labelled(const Example& e) {
  std::vector<int> pos;
  for (int t = 0; t < static_cast<int>(e.targets.size()); ++t)
    if (e.targets[t] != kIgnoreLabel) pos.push_back(t);
  return pos;
}

// Forgetting: every label is the key's LATEST value in the context; kept / updated class right;
// U updates with a new value; distance from the latest occurrence; passes repeat the context.
void check_forgetting(const Example& e, const MqarSegment& s, int V) {
  const int K = s.num_kv, U = s.updates, C1 = 2 * (K + U), C = s.passes * C1;
  for (int r = 1; r < s.passes; ++r)
    for (int j = 0; j < C1; ++j) ASSERT_EQ(e.inputs[r * C1 + j], e.inputs[j]);
  std::map<int, int> first_value, latest, latest_pos, occurrences;
  for (int t = 0; t < C; t += 2) {
    const int k = e.inputs[t], v = e.inputs[t + 1];
    ASSERT_TRUE(k >= 1 && k < V / 2) << "key " << k;
    ASSERT_TRUE(v >= V / 2 && v < V) << "value " << v;
    if (t < C1) {
      if (!first_value.count(k)) first_value[k] = v;
      ++occurrences[k];
    }
    latest[k] = v;
    latest_pos[k] = t;
  }
  ASSERT_EQ(static_cast<int>(first_value.size()), K) << "K distinct keys";
  int updated = 0;
  for (auto& [k, n] : occurrences) {
    ASSERT_LE(n, 2);
    if (n == 2) {
      ++updated;
      EXPECT_NE(latest[k], first_value[k]) << "an update must change the value";
    }
  }
  EXPECT_EQ(updated, U);
  std::vector<int> pos = labelled(e);
  ASSERT_EQ(static_cast<int>(pos.size()), K);
  std::set<int> queried;
  for (int t : pos) {
    ASSERT_GE(t, C);
    const int k = e.inputs[t];
    ASSERT_TRUE(latest.count(k)) << "query " << k << " is not a key";
    EXPECT_EQ(e.targets[t], latest[k]) << "label must be the latest value";
    EXPECT_EQ(e.query_class[t], occurrences[k] == 2 ? kForgettingUpdated : kForgettingKept);
    EXPECT_EQ(e.distance[t], t - latest_pos[k]);
    queried.insert(k);
  }
  EXPECT_EQ(static_cast<int>(queried.size()), K) << "every key queried once";
}

// Compositional: triples a b v; every label = the value of the compound key (a, b) read at the
// query; class = whether another key shares a; with a full grid, neither token alone resolves it.
void check_compositional(const Example& e, const MqarSegment& s, int V) {
  const int K = s.num_kv, C1 = 3 * K, C = s.passes * C1, third = V / 3;
  for (int r = 1; r < s.passes; ++r)
    for (int j = 0; j < C1; ++j) ASSERT_EQ(e.inputs[r * C1 + j], e.inputs[j]);
  std::map<std::pair<int, int>, int> value, key_pos;
  std::map<int, std::set<int>> values_of_first, values_of_second;
  std::set<int> all_values;
  for (int i = 0; i < K; ++i) {
    const int a = e.inputs[3 * i], b = e.inputs[3 * i + 1], v = e.inputs[3 * i + 2];
    ASSERT_TRUE(a >= 1 && a < third && b >= third && b < 2 * third && v >= 2 * third && v < V);
    ASSERT_FALSE(value.count({a, b})) << "compound keys are distinct";
    value[{a, b}] = v;
    key_pos[{a, b}] = (s.passes - 1) * C1 + 3 * i + 1;
    values_of_first[a].insert(v);
    values_of_second[b].insert(v);
    all_values.insert(v);
  }
  EXPECT_EQ(static_cast<int>(all_values.size()), K) << "values are distinct";
  std::vector<int> pos = labelled(e);
  ASSERT_EQ(static_cast<int>(pos.size()), K);
  std::set<std::pair<int, int>> queried;
  for (int t : pos) {
    ASSERT_GE(t - 1, C);
    const std::pair<int, int> key{e.inputs[t - 1], e.inputs[t]};
    ASSERT_TRUE(value.count(key)) << "query (" << key.first << "," << key.second << ")";
    EXPECT_EQ(e.targets[t], value[key]);
    EXPECT_EQ(e.distance[t], t - key_pos[key]);
    const bool shared = values_of_first[key.first].size() > 1;
    EXPECT_EQ(e.query_class[t], shared ? kCompositionalSharedFirst : kCompositionalUniqueFirst);
    if (s.grid == 0 && K > 1) {  // Zoology's full grid: neither token alone fixes the value
      EXPECT_GT(values_of_first[key.first].size(), 1u);
      EXPECT_GT(values_of_second[key.second].size(), 1u);
    }
    queried.insert(key);
  }
  EXPECT_EQ(static_cast<int>(queried.size()), K);
}

TEST(TaskData, ForgettingLabelsAreTheLatestValue) {
  for (const char* text : {"forgetting:64:4:300:updates=2", "forgetting:64:4:300:updates=4",
                           "forgetting:64:5:300:updates=0", "forgetting:96:4:300:updates=3:passes=2"}) {
    SCOPED_TRACE(text);
    for (bool rnq : {false, true}) {
      MqarDataset ds = dataset(text, 128, 0.01f, rnq);
      for (long i = 0; i < ds.size(); ++i) check_forgetting(get(ds, i), ds.segments()[0], 128);
    }
  }
}

TEST(TaskData, CompositionalKeysNeedBothTokens) {
  for (const char* text : {"compositional:60:4:300", "compositional:96:9:300",
                           "compositional:96:5:300:grid=4", "compositional:120:4:300:passes=3"}) {
    SCOPED_TRACE(text);
    for (bool rnq : {false, true}) {
      MqarDataset ds = dataset(text, 150, 0.01f, rnq);
      for (long i = 0; i < ds.size(); ++i) check_compositional(get(ds, i), ds.segments()[0], 150);
    }
  }
}

TEST(TaskData, CompositionalSparseGridHasBothClasses) {
  MqarDataset ds = dataset("compositional:96:5:400:grid=5", 150);
  long shared = 0, unique = 0;
  for (long i = 0; i < ds.size(); ++i)
    for (int c : get(ds, i).query_class) {
      shared += c == kCompositionalSharedFirst;
      unique += c == kCompositionalUniqueFirst;
    }
  // 5 cells of a 5x5 grid: a first token is shared with probability ~0.55 per key.
  EXPECT_GT(shared, 400);
  EXPECT_GT(unique, 400);
}

TEST(TaskData, MultiPassRepeatsTheContextBeforeTheQueries) {
  for (int p : {1, 2, 3}) {
    const MqarSegment s = segment("64:4:200:passes=" + std::to_string(p));
    EXPECT_EQ(s.passes, p);
    MqarDataset ds({s}, 128, 0.01f, true, 3, Split::train);
    for (long i = 0; i < ds.size(); ++i) {
      Example e = get(ds, i);
      const int C1 = 8, C = p * C1;
      for (int r = 1; r < p; ++r)
        for (int j = 0; j < C1; ++j) ASSERT_EQ(e.inputs[r * C1 + j], e.inputs[j]);
      std::map<int, int> value, pos;
      for (int j = 0; j < C1; j += 2) value[e.inputs[j]] = e.inputs[j + 1], pos[e.inputs[j]] = j;
      std::vector<int> lab = labelled(e);
      ASSERT_EQ(lab.size(), 4u);
      for (int t : lab) {
        ASSERT_GE(t, C) << "queries come after all " << p << " passes";
        ASSERT_EQ((t - C) % 2, 0);
        EXPECT_EQ(e.targets[t], value.at(e.inputs[t]));
        EXPECT_EQ(e.distance[t], t - (C - C1 + pos[e.inputs[t]]));
        EXPECT_EQ(e.query_class[t], kNoQueryClass);
      }
    }
  }
}

// One pass is plain MQAR, unchanged: `64:4:n` and `mqar:64:4:n:passes=1` give the same data.
TEST(TaskData, OnePassIsPlainMqar) {
  MqarDataset a = dataset("64:4:50", 128), b = dataset("mqar:64:4:50:passes=1", 128);
  for (long i = 0; i < a.size(); ++i) EXPECT_EQ(get(a, i), get(b, i)) << i;
}

// The first drawn query (key 0 in context order) follows p(g) ∝ (g+1)^(a-1) over the slots of
// every task; a clearly different law (uniform) is rejected.
TEST(TaskData, GapsFollowThePowerLawInEveryTask) {
  const float a = 0.3f;
  for (const char* text : {"forgetting:64:4:6000:updates=2", "compositional:72:4:6000",
                           "64:4:6000:passes=2"}) {
    SCOPED_TRACE(text);
    MqarDataset ds = dataset(text, 150, a, true, 11);
    const MqarSegment& s = ds.segments()[0];
    const int space = query_space(s), slot = query_slot(s), C = s.passes * context_length(s);
    const int key_len = s.task == Task::compositional ? 2 : 1;
    std::vector<long> first(space, 0);
    for (long i = 0; i < ds.size(); ++i) {
      Example e = get(ds, i);
      for (int t : labelled(e)) {
        const int start = t - (key_len - 1);
        bool is_key0 = e.inputs[start] == e.inputs[0];
        if (key_len == 2) is_key0 = is_key0 && e.inputs[t] == e.inputs[1];
        if (is_key0) ++first[(start - C) / slot];
      }
    }
    const std::vector<double> p = testing::power_law(space, a), uniform(space, 1.0 / space);
    // space 26 / 20 / 24 slots -> df <= 25; the chi-square 99.99% quantile for df 25 is 60.1.
    EXPECT_LT(testing::chi_square(first, p, ds.size()), 60.1);
    EXPECT_GT(testing::chi_square(first, uniform, ds.size()), 300.0);
  }
}

TEST(TaskData, IndependentOfThreadCountAndDisjointSplits) {
  const std::string mix = "forgetting:64:4:60:updates=2,compositional:72:9:60,32:2:60:passes=3";
  MqarDataset ds = dataset(mix, 150);
  testing::OmpThreads threads(1);
  MqarBatch one = make_batch(ds, 0, 180, false);
  threads.set(4);
  MqarBatch four = make_batch(ds, 0, 180, false);
  EXPECT_EQ(one.inputs, four.inputs);
  EXPECT_EQ(one.label_target, four.label_target);
  EXPECT_EQ(one.label_distance, four.label_distance);
  EXPECT_EQ(one.label_class, four.label_class);
  // Reverse generation order gives the same examples.
  for (long i = ds.size() - 1; i >= 0; i -= 17) {
    Example e = get(ds, i);
    const int T = ds.seq_len(i);
    EXPECT_EQ(std::vector<int>(one.inputs.begin() + i * one.T, one.inputs.begin() + i * one.T + T),
              e.inputs);
  }
  // Train and test: no example in common.
  MqarDataset test = dataset(mix, 150, 0.01f, true, 7, Split::test);
  std::set<std::vector<int>> train_rows;
  for (long i = 0; i < ds.size(); ++i) train_rows.insert(get(ds, i).inputs);
  for (long i = 0; i < test.size(); ++i) EXPECT_FALSE(train_rows.count(get(test, i).inputs)) << i;
}

TEST(TaskData, RandomNonQueriesIsOnByDefault) {
  EXPECT_TRUE(MqarConfig{}.random_non_queries);
  ExperimentConfig c;
  finalize(c);
  EXPECT_TRUE(c.mqar.random_non_queries);
}

void expect_config_error(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no ConfigError; expected one naming " << words.at(0);
  } catch (const ConfigError& e) {
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos)
          << "'" << e.what() << "' lacks '" << w << "'";
  }
}

TEST(TaskConfig, BadSettingsNameTheOptionAndTheFix) {
  auto check = [](const std::string& text, int V, std::vector<std::string> words) {
    SCOPED_TRACE(text);
    words.insert(words.begin(), "mqar.train");
    expect_config_error([&] { dataset(text, V); }, words);
  };
  check("forgetting:64:4:10:updates=5", 128, {"updates=5", "[0, K=4]"});
  check("forgetting:32:6:10:updates=5", 128, {"2*(K+updates)*passes + 2*K <= T", "at least 34"});
  check("forgetting:64:4:10", 128, {"needs updates=U"});
  check("64:4:10:passes=8", 128, {"2*K*passes + 2*K <= T", "at least 72"});
  check("64:4:10:passes=0", 128, {"passes=0", ">= 1"});
  check("compositional:64:5:10", 150, {"perfect square", "K=4 or K=9", "grid=g"});
  check("compositional:64:5:10:grid=2", 150, {"grid=2", "raise grid to at least 3"});
  check("compositional:36:9:10", 150, {"3*K*passes + 3*K <= T", "at least 54"});
  check("compositional:24:2:10:grid=40", 100, {"40 distinct first key tokens", "model.vocab_size=100"});
  check("64:4:10:updates=2", 128, {"only the forgetting task"});
  check("forgetting:64:4:10:updates=1:grid=2", 128, {"only the compositional task"});
  check("recall:64:4:10", 128, {"unknown task 'recall'"});
  check("forgetting:64:4:10:update=2", 128, {"'update=2'", "updates=U"});
  // Forgetting / compositional take Zoology's vocab > T rule too.
  check("forgetting:64:4:10:updates=1", 64, {"model.vocab_size=64", "exceed T=64"});
}

// Every field of the segment syntax, for every kind: a field that does not apply to the task (even
// at 0, which used to pass as "not given"), grid=0 (used to become the default grid), a repeated
// field (the last used to win) and passes=0 are refused at parse time, naming the field.
TEST(TaskConfig, ParseRefusesFieldsThatDoNotApplyOrRepeat) {
  auto bad = [](const std::string& text, std::vector<std::string> words) {
    SCOPED_TRACE(text);
    words.push_back("mqar.test");
    expect_config_error([&] { parse_segments(text, "mqar.test"); }, words);
  };
  bad("64:4:10:updates=0", {"updates=", "only the forgetting task"});
  bad("mqar:64:4:10:grid=0", {"grid=", "only the compositional task"});
  bad("compositional:64:4:10:updates=0", {"only the forgetting task"});
  bad("forgetting:64:4:10:updates=1:grid=0", {"only the compositional task"});
  bad("compositional:64:4:10:grid=0", {"grid=0", "omit grid="});
  bad("forgetting:64:4:10:updates=1:updates=2", {"updates=", "twice"});
  bad("compositional:64:4:10:grid=2:grid=3", {"grid=", "twice"});
  bad("64:4:10:passes=2:passes=2", {"passes=", "twice"});
  bad("64:4:10:passes=0", {"passes=0", ">= 1"});
  // What applies is still accepted, the documented updates=0 of forgetting included.
  EXPECT_NO_THROW(parse_segments("forgetting:64:5:10:updates=0,compositional:64:4:10:grid=2:passes=2,"
                                 "64:4:10:passes=1",
                                 "mqar.test"));
}

TEST(TaskConfig, ParseAndFormatRoundTrip) {
  const std::string text = "forgetting:64:4:100:updates=2,compositional:96:5:10:passes=2:grid=3,"
                           "64:4:7,64:4:7:passes=3";
  std::vector<MqarSegment> s = parse_segments(text, "mqar.train");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].task, Task::forgetting);
  EXPECT_EQ(s[0].updates, 2);
  EXPECT_EQ(s[1].task, Task::compositional);
  EXPECT_EQ(s[1].passes, 2);
  EXPECT_EQ(s[1].grid, 3);
  EXPECT_EQ(s[2].task, Task::mqar);
  EXPECT_EQ(format_segments(s), text);
  EXPECT_EQ(format_segments(parse_segments("mqar:64:4:7", "x")), "64:4:7");
}

TEST(TaskMetrics, ClassAccuracyOnUpdatedAndKeptKeys) {
  MqarDataset ds = dataset("forgetting:64:4:20:updates=2,compositional:96:5:20:grid=4", 150);
  MqarBatch b = make_batch(ds, 0, 40, false);
  // Right on updated keys and on compositional keys with a shared first token, wrong elsewhere.
  std::vector<int> pred(b.num_labels());
  std::vector<float> loss(b.num_labels(), 1.0f);
  std::vector<long> count(kNumQueryClasses, 0);
  for (int n = 0; n < b.num_labels(); ++n) {
    const int c = b.label_class[n];
    const bool right = c == kForgettingUpdated || c == kCompositionalSharedFirst;
    pred[n] = right ? b.label_target[n] : b.label_target[n] + 1;
    ++count.at(c);
  }
  EvalAccumulator acc(ds.num_segments(), default_gap_edges(ds.max_seq_len()));
  acc.add(b, pred.data(), loss.data());
  EvalPoint p = acc.result(0);
  ASSERT_EQ(p.class_accuracy.size(), size_t(kNumQueryClasses));
  EXPECT_EQ(p.class_accuracy[kForgettingUpdated], 1.0f);
  EXPECT_EQ(p.class_accuracy[kForgettingKept], 0.0f);
  EXPECT_EQ(p.class_accuracy[kCompositionalSharedFirst], 1.0f);
  EXPECT_EQ(p.class_accuracy[kCompositionalUniqueFirst], 0.0f);
  for (int c = 0; c < kNumQueryClasses; ++c) EXPECT_EQ(p.class_count[c], count[c]) << c;
  EXPECT_EQ(p.class_count[kForgettingKept] + p.class_count[kForgettingUpdated], 20 * 4);
  EXPECT_EQ(p.class_count[kForgettingUpdated], 20 * 2);
}

TEST(TokenFileData, GivesTheGeneratorsBatchesBitForBit) {
  testing::TempDir d("statex_tasks");
  MqarDataset gen = dataset("forgetting:64:4:30:updates=2,compositional:48:4:25,32:2:20", 150);
  write_token_file(d.path("t.h5"), to_token_file(gen));
  TokenFileDataset file(d.path("t.h5"), 150, "data.train");
  EXPECT_EQ(file.size(), gen.size());
  EXPECT_EQ(file.segment_names(), gen.segment_names());
  EXPECT_EQ(file.max_seq_len(), gen.max_seq_len());
  for (long step = 0; step < 12; ++step) {  // batch 16 over 75 examples: wraps around
    MqarBatch a = make_train_batch(gen, step, 16), b = make_train_batch(file, step, 16);
    ASSERT_EQ(a.T, b.T) << step;
    EXPECT_EQ(a.inputs, b.inputs) << step;
    EXPECT_EQ(a.label_row, b.label_row) << step;
    EXPECT_EQ(a.label_target, b.label_target) << step;
    EXPECT_EQ(a.label_distance, b.label_distance) << step;
    EXPECT_EQ(a.label_class, b.label_class) << step;
    EXPECT_EQ(a.example_segment, b.example_segment) << step;
  }
}

TEST(TokenFileData, BadFilesNameTheOption) {
  testing::TempDir d("statex_tasks");
  MqarDataset gen = dataset("32:2:10", 64);
  TokenFile good = to_token_file(gen);
  auto check = [&](TokenFile tf, int V, std::vector<std::string> words) {
    write_token_file(d.path("bad.h5"), tf);
    words.insert(words.begin(), "data.test");
    expect_config_error([&] { TokenFileDataset(d.path("bad.h5"), V, "data.test"); }, words);
  };
  TokenFile no_labels = good;
  no_labels.has_labels = false;
  no_labels.labels.clear();
  check(no_labels, 64, {"no '/labels'"});
  check(good, 40, {"outside the model vocabulary"});
  TokenFile long_len = good;
  long_len.lengths[3] = 33;
  check(long_len, 64, {"'/lengths' of example 3", "outside [1, 32]"});
  TokenFile short_len = good;
  short_len.lengths[2] = 20;
  check(short_len, 64, {"example 2", "after its length 20"});
  TokenFile unlabelled = good;
  std::fill(unlabelled.labels.begin(), unlabelled.labels.end(), kIgnoreLabel);
  check(unlabelled, 64, {"no labelled position"});
  TokenFile bad_segment = good;
  bad_segment.segment[0] = 4;
  check(bad_segment, 64, {"'/segment' ids", "found 4"});
  expect_config_error([&] { TokenFileDataset(d.path("missing.h5"), 64, "data.train"); },
                      {"data.train", "missing.h5"});
}

}  // namespace
}  // namespace statex
