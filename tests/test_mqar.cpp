// MQAR generator, batching, config validation and recall metrics (sim/task/).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/task/metrics.h"
#include "sim/task/mqar.h"
#include "tests/support/gap_stats.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using testing::chi_square;
using testing::power_law;

struct Example {
  std::vector<int> inputs, targets, distance;
  bool operator==(const Example& o) const {
    return inputs == o.inputs && targets == o.targets && distance == o.distance;
  }
};

Example get(const MqarDataset& ds, long index) {
  const int T = ds.seq_len(index);
  Example e{std::vector<int>(T), std::vector<int>(T), std::vector<int>(T)};
  ds.example(index, e.inputs.data(), e.targets.data(), e.distance.data());
  return e;
}

// Gap of key i (0-based context order) of an example, recovered from its query position.
std::vector<int> gaps_of(const Example& e, int K) {
  const int C = 2 * K;
  std::vector<int> gaps(K, -1);
  for (int t = C; t < static_cast<int>(e.inputs.size()); ++t) {
    if (e.targets[t] == kIgnoreLabel) continue;
    for (int i = 0; i < K; ++i)
      if (e.inputs[2 * i] == e.inputs[t]) gaps[i] = (t - C) / 2;
  }
  return gaps;
}

// Every structural property of one example (docs/design.md §2).
void check_example(const Example& e, int T, int K, int V, bool random_non_queries) {
  const int C = 2 * K;
  ASSERT_EQ(static_cast<int>(e.inputs.size()), T);
  std::set<int> keys, values;
  std::map<int, int> value_of;
  for (int i = 0; i < K; ++i) {
    const int k = e.inputs[2 * i], v = e.inputs[2 * i + 1];
    EXPECT_GE(k, 1);
    EXPECT_LT(k, V / 2);
    EXPECT_GE(v, V / 2);
    EXPECT_LT(v, V);
    keys.insert(k);
    values.insert(v);
    value_of[k] = v;
    EXPECT_EQ(e.targets[2 * i], kIgnoreLabel);
    EXPECT_EQ(e.targets[2 * i + 1], kIgnoreLabel);
  }
  EXPECT_EQ(static_cast<int>(keys.size()), K) << "keys not distinct";
  EXPECT_EQ(static_cast<int>(values.size()), K) << "values not distinct";

  int labels = 0;
  std::set<int> queried;
  for (int t = C; t < T; ++t) {
    if (e.targets[t] == kIgnoreLabel) {
      EXPECT_EQ(e.distance[t], -1);
      if (!random_non_queries) {
        EXPECT_EQ(e.inputs[t], 0) << "t=" << t;
      }
      EXPECT_GE(e.inputs[t], 0);
      EXPECT_LT(e.inputs[t], V);
      continue;
    }
    ++labels;
    EXPECT_EQ((t - C) % 2, 0) << "query off the even slots at t=" << t;
    const int key = e.inputs[t];
    ASSERT_TRUE(value_of.count(key)) << "query token " << key << " is not a key";
    EXPECT_EQ(e.targets[t], value_of[key]) << "label is not the value paired with the key";
    const int key_pos = static_cast<int>(
        std::find(e.inputs.begin(), e.inputs.begin() + C, key) - e.inputs.begin());
    EXPECT_EQ(e.distance[t], t - key_pos);
    queried.insert(key);
  }
  EXPECT_EQ(labels, K);
  EXPECT_EQ(queried, keys) << "every key is queried exactly once";
}

TEST(MqarData, StructureRangesDistinctnessAndPairing) {
  const int V = 256;
  std::vector<MqarSegment> segs{{64, 4, 50}, {128, 8, 50}, {66, 16, 50}, {130, 1, 20}};
  MqarDataset ds(segs, V, 0.01f, false, 7, Split::train);
  ASSERT_EQ(ds.size(), 170);
  for (long i = 0; i < ds.size(); ++i) {
    const MqarSegment& s = segs[ds.segment_of(i)];
    SCOPED_TRACE("index " + std::to_string(i));
    check_example(get(ds, i), s.seq_len, s.num_kv, V, false);
  }
  // Edge of the vocabulary: K = V/2 - 1 keys uses every key; V = T + 2 is the smallest V allowed.
  MqarDataset tight({{8, 2, 20}}, 10, 0.5f, false, 3, Split::test);
  for (long i = 0; i < tight.size(); ++i) check_example(get(tight, i), 8, 2, 10, false);
  MqarDataset full_keys({{16, 4, 20}}, 17, 1.0f, true, 3, Split::train);  // keys 1..7, K=4
  MqarDataset all_keys({{28, 7, 20}}, 30, 1.0f, false, 3, Split::train);  // keys 1..14
  for (long i = 0; i < full_keys.size(); ++i) check_example(get(full_keys, i), 16, 4, 17, true);
  for (long i = 0; i < all_keys.size(); ++i) check_example(get(all_keys, i), 28, 7, 30, false);
}

TEST(MqarData, SegmentsLaidOutInOrder) {
  MqarDataset ds({{64, 4, 3}, {32, 2, 2}, {128, 8, 4}}, 256, 0.01f, false, 1, Split::test);
  const std::vector<int> expect_seg{0, 0, 0, 1, 1, 2, 2, 2, 2};
  ASSERT_EQ(ds.size(), 9);
  for (long i = 0; i < 9; ++i) EXPECT_EQ(ds.segment_of(i), expect_seg[i]) << i;
  EXPECT_EQ(ds.seq_len(3), 32);
  EXPECT_EQ(ds.seq_len(8), 128);
  EXPECT_EQ(ds.max_seq_len(), 128);
  EXPECT_THROW(ds.segment_of(9), std::out_of_range);
  EXPECT_THROW(ds.segment_of(-1), std::out_of_range);
}

TEST(MqarData, RandomNonQueriesFillsBlanksUniformlyAndKeepsTheTask) {
  const int V = 256, T = 64, K = 4;
  MqarDataset off({{T, K, 400}}, V, 0.01f, false, 11, Split::train);
  MqarDataset on({{T, K, 400}}, V, 0.01f, true, 11, Split::train);
  std::vector<long> hist(V, 0);
  long fillers = 0;
  for (long i = 0; i < on.size(); ++i) {
    const Example a = get(off, i), b = get(on, i);
    check_example(b, T, K, V, true);
    EXPECT_EQ(a.targets, b.targets);  // the task itself is unchanged by the filler
    EXPECT_EQ(a.distance, b.distance);
    for (int t = 0; t < T; ++t) {
      if (a.inputs[t] != 0) {
        EXPECT_EQ(a.inputs[t], b.inputs[t]);
      } else {
        ++hist[b.inputs[t]];
        ++fillers;
      }
    }
  }
  // Fillers are uniform over [0, V) like Zoology's randint(vocab_size): both halves (keys and
  // values) appear, and per-quarter frequencies are within 5 sigma of 1/4.
  ASSERT_EQ(fillers, 400L * (T - 2 * K - K));
  for (int q = 0; q < 4; ++q) {
    long n = 0;
    for (int v = q * V / 4; v < (q + 1) * V / 4; ++v) n += hist[v];
    const double expect = fillers / 4.0, sigma = std::sqrt(fillers * 0.25 * 0.75);
    EXPECT_NEAR(n, expect, 5 * sigma) << "quarter " << q;
  }
}

// Exact distribution of the second successive draw without replacement from p (the first is p).
std::vector<double> second_draw(const std::vector<double>& p) {
  std::vector<double> q(p.size(), 0.0);
  for (size_t j = 0; j < p.size(); ++j)
    for (size_t i = 0; i < p.size(); ++i)
      if (i != j) q[j] += p[i] * p[j] / (1.0 - p[i]);
  return q;
}

TEST(MqarData, GapsFollowThePowerLaw) {
  // T=64, K=4: space = 28 slots, df = 27; the chi-square 99.99% quantile for df=27 is ~66.
  const int T = 64, K = 4, space = (T - 2 * K) / 2;
  const long n = 20000;
  for (double a : {0.01, 0.5}) {
    SCOPED_TRACE("power_a " + std::to_string(a));
    MqarDataset ds({{T, K, n}}, 256, static_cast<float>(a), false, 5, Split::train);
    std::vector<long> first(space, 0), second(space, 0);
    for (long i = 0; i < n; ++i) {
      const std::vector<int> g = gaps_of(get(ds, i), K);
      std::set<int> distinct(g.begin(), g.end());
      ASSERT_EQ(static_cast<int>(distinct.size()), K) << "gaps drawn with replacement";
      ASSERT_GE(g[0], 0);
      ++first[g[0]];
      ++second[g[1]];
    }
    const std::vector<double> p = power_law(space, a);
    EXPECT_LT(chi_square(first, p, n), 66.0);
    EXPECT_LT(chi_square(second, second_draw(p), n), 66.0);
    // The test can fail: the same counts are far from a uniform gap distribution.
    EXPECT_GT(chi_square(first, std::vector<double>(space, 1.0 / space), n), 500.0);
  }
}

TEST(MqarData, PowerOneIsUniform) {
  const int T = 40, K = 2, space = (T - 2 * K) / 2;
  const long n = 9000;
  MqarDataset ds({{T, K, n}}, 64, 1.0f, false, 9, Split::test);
  std::vector<long> first(space, 0);
  for (long i = 0; i < n; ++i) ++first[gaps_of(get(ds, i), K)[0]];
  EXPECT_LT(chi_square(first, std::vector<double>(space, 1.0 / space), n), 50.0);  // df 17
}

TEST(MqarData, DeterministicAndSeedSeparated) {
  const std::vector<MqarSegment> segs{{64, 4, 100}, {128, 8, 30}};
  MqarDataset a(segs, 256, 0.01f, true, 42, Split::train);
  MqarDataset b(segs, 256, 0.01f, true, 42, Split::train);
  MqarDataset test(segs, 256, 0.01f, true, 42, Split::test);
  MqarDataset other_seed(segs, 256, 0.01f, true, 43, Split::train);
  int same_as_next = 0, same_as_test = 0, same_as_other = 0;
  for (long i = 0; i < a.size(); ++i) {
    const Example ea = get(a, i);
    EXPECT_TRUE(ea == get(b, i)) << "index " << i;
    EXPECT_TRUE(ea == get(a, i)) << "regenerating changed index " << i;
    if (i + 1 < a.size() && a.seq_len(i + 1) == a.seq_len(i)) same_as_next += ea == get(a, i + 1);
    same_as_test += ea == get(test, i);
    same_as_other += ea == get(other_seed, i);
  }
  EXPECT_EQ(same_as_next, 0);
  EXPECT_EQ(same_as_test, 0);
  EXPECT_EQ(same_as_other, 0);
  EXPECT_NE(mqar_example_seed(42, Split::train, 0, 5), mqar_example_seed(42, Split::test, 0, 5));
  EXPECT_NE(mqar_example_seed(42, Split::train, 0, 5), mqar_example_seed(42, Split::train, 1, 5));

  // An example depends on its segment and place in it, not on the other segments' counts.
  MqarDataset grown({{64, 4, 500}, {128, 8, 30}}, 256, 0.01f, true, 42, Split::train);
  for (long j = 0; j < 30; ++j) EXPECT_TRUE(get(a, 100 + j) == get(grown, 500 + j)) << j;
  for (long j = 0; j < 100; ++j) EXPECT_TRUE(get(a, j) == get(grown, j)) << j;
}

// The validation split (mqar.valid) has its own seed space: with the same seed and segments it
// shares no example with train or test, and its existence leaves train and test unchanged (their
// streams are those of before the split existed: pinned values).
TEST(MqarData, ValidationSeedSpaceDisjointFromTrainAndTest) {
  const std::vector<MqarSegment> segs{{64, 4, 300}, {128, 8, 60}};
  MqarDataset train(segs, 256, 0.01f, true, 42, Split::train);
  MqarDataset test(segs, 256, 0.01f, true, 42, Split::test);
  MqarDataset valid(segs, 256, 0.01f, true, 42, Split::valid);
  std::set<std::vector<int>> train_rows, test_rows;
  for (long i = 0; i < train.size(); ++i) train_rows.insert(get(train, i).inputs);
  for (long i = 0; i < test.size(); ++i) test_rows.insert(get(test, i).inputs);
  std::set<std::vector<int>> valid_rows;
  for (long i = 0; i < valid.size(); ++i) {
    const Example e = get(valid, i);
    EXPECT_FALSE(train_rows.count(e.inputs)) << "valid example " << i << " is a train example";
    EXPECT_FALSE(test_rows.count(e.inputs)) << "valid example " << i << " is a test example";
    EXPECT_TRUE(e == get(MqarDataset(segs, 256, 0.01f, true, 42, Split::valid), i));
    valid_rows.insert(e.inputs);
  }
  EXPECT_EQ(valid_rows.size(), size_t(valid.size()));  // and no repeats within it
  for (int seg = 0; seg < 3; ++seg)
    for (long i = 0; i < 50; ++i) {
      const uint64_t v = mqar_example_seed(42, Split::valid, seg, i);
      EXPECT_NE(v, mqar_example_seed(42, Split::train, seg, i));
      EXPECT_NE(v, mqar_example_seed(42, Split::test, seg, i));
    }
  EXPECT_STREQ(split_name(Split::valid), "valid");
  // Train and test streams as before the validation split existed.
  EXPECT_EQ(mqar_example_seed(42, Split::train, 0, 5), 0xfc7b9ad7cf08f8abULL);
  EXPECT_EQ(mqar_example_seed(42, Split::test, 1, 7), 0x89d8d1c5d333a8c8ULL);
}

TEST(MqarData, IndependentOfThreadCountAndOrder) {
  MqarDataset ds({{64, 4, 150}, {96, 12, 150}}, 256, 0.01f, true, 3, Split::train);
  const int Tmax = 96;
  auto generate = [&](int threads, bool reverse) {
    std::vector<int> buf(ds.size() * Tmax * 3, -7);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 3)
    for (long j = 0; j < ds.size(); ++j) {
      const long i = reverse ? ds.size() - 1 - j : j;
      int* row = &buf[i * Tmax * 3];
      ds.example(i, row, row + Tmax, row + 2 * Tmax);
    }
    return buf;
  };
  const std::vector<int> one = generate(1, false);
  EXPECT_EQ(one, generate(2, false));
  EXPECT_EQ(one, generate(2, true));

  testing::OmpThreads threads(1);
  const MqarBatch b1 = make_batch(ds, 140, 64, false);
  threads.set(2);
  const MqarBatch b2 = make_batch(ds, 140, 64, false);
  EXPECT_EQ(b1.inputs, b2.inputs);
  EXPECT_EQ(b1.label_row, b2.label_row);
  EXPECT_EQ(b1.label_target, b2.label_target);
  EXPECT_EQ(b1.label_distance, b2.label_distance);
}

TEST(MqarBatch, MixedLengthsArePaddedWithoutLabels) {
  MqarDataset ds({{32, 2, 3}, {64, 4, 3}}, 256, 0.01f, true, 8, Split::test);
  const MqarBatch b = make_batch(ds, 1, 4, false);  // indices 1, 2 (T=32) and 3, 4 (T=64)
  ASSERT_EQ(b.B, 4);
  ASSERT_EQ(b.T, 64);
  EXPECT_EQ(b.example_index, (std::vector<long>{1, 2, 3, 4}));
  EXPECT_EQ(b.example_segment, (std::vector<int>{0, 0, 1, 1}));
  ASSERT_EQ(b.num_labels(), 2 + 2 + 4 + 4);
  ASSERT_EQ(b.label_target.size(), b.label_row.size());
  ASSERT_EQ(b.label_distance.size(), b.label_row.size());
  ASSERT_EQ(b.label_example.size(), b.label_row.size());
  std::vector<int> labels_per_example(b.B, 0);
  for (int n = 0; n < b.num_labels(); ++n) {
    const int ex = b.label_example[n];
    EXPECT_EQ(b.label_row[n] / b.T, ex);
    EXPECT_LT(b.label_row[n] % b.T, ds.seq_len(b.example_index[ex])) << "label in the padding";
    if (n > 0) {
      EXPECT_GT(b.label_row[n], b.label_row[n - 1]);  // ordered by example, position
    }
    ++labels_per_example[ex];
  }
  EXPECT_EQ(labels_per_example, (std::vector<int>{2, 2, 4, 4}));
  const std::vector<int> dense = b.dense_targets();
  for (int r = 0; r < b.B; ++r) {
    const Example e = get(ds, b.example_index[r]);
    const int T = static_cast<int>(e.inputs.size());
    for (int t = 0; t < b.T; ++t) {
      const int in = b.inputs[r * b.T + t], tg = dense[r * b.T + t];
      if (t < T) {
        EXPECT_EQ(in, e.inputs[t]);
        EXPECT_EQ(tg, e.targets[t]);
      } else {
        EXPECT_EQ(in, 0) << "padding must be token 0";
        EXPECT_EQ(tg, kIgnoreLabel);
      }
    }
  }
  for (int n = 0; n < b.num_labels(); ++n) {
    const Example e = get(ds, b.example_index[b.label_example[n]]);
    EXPECT_EQ(b.label_distance[n], e.distance[b.label_row[n] % b.T]);
  }

  // Evaluation batches stop at the end; training batches wrap around.
  EXPECT_EQ(make_batch(ds, 4, 4, false).B, 2);
  EXPECT_THROW(make_batch(ds, 6, 4, false), std::out_of_range);
  const MqarBatch w = make_batch(ds, 4, 4, true);
  EXPECT_EQ(w.example_index, (std::vector<long>{4, 5, 0, 1}));
  EXPECT_EQ(make_train_batch(ds, 2, 4).example_index, (std::vector<long>{2, 3, 4, 5}));
  EXPECT_EQ(make_train_batch(ds, 3, 4).example_index, (std::vector<long>{0, 1, 2, 3}));
  const MqarBatch short_only = make_batch(ds, 0, 2, false);
  EXPECT_EQ(short_only.T, 32);
}

// ---- configuration errors -------------------------------------------------------------------

MqarConfig good_config() {
  MqarConfig c;
  c.vocab_size = 256;
  c.train = {{64, 4, 1000}};
  c.test = {{64, 4, 100}, {128, 8, 100}};
  return c;
}

// Runs f, expects ConfigError whose message contains every string in `must_name`.
void expect_config_error(const std::function<void()>& f, const std::vector<std::string>& must_name) {
  try {
    f();
    ADD_FAILURE() << "no ConfigError (expected one naming " << must_name[0] << ")";
  } catch (const ConfigError& e) {
    for (const std::string& s : must_name)
      EXPECT_NE(std::string(e.what()).find(s), std::string::npos)
          << "message '" << e.what() << "' does not name " << s;
  }
}

TEST(MqarConfigCheck, EveryImpossibleSegmentNamesItsOption) {
  EXPECT_NO_THROW(validate(good_config()));
  struct Case {
    MqarSegment seg;
    int vocab;
    std::vector<std::string> names;
  };
  const std::vector<Case> cases{
      {{63, 4, 10}, 256, {"even"}},                              // T odd
      {{64, 17, 10}, 256, {"4*K <= T"}},                        // 4K > T
      {{64, 0, 10}, 256, {"K"}},                                // K < 1
      {{64, 4, 0}, 256, {"count"}},                             // count < 1
      {{64, 4, -5}, 256, {"count"}},
      {{8, 2, 10}, 5, {"model.vocab_size", "keys"}},            // V/2-1 = 1 key < K
      {{8, 2, 10}, 8, {"model.vocab_size", "exceed"}},          // V == T (keys fit: 3)
      {{64, 4, 10}, 64, {"model.vocab_size", "exceed"}},        // V == T
      {{128, 8, 10}, 100, {"model.vocab_size"}},                // V < T
  };
  for (const Case& c : cases) {
    for (const char* which : {"mqar.train", "mqar.test"}) {
      MqarConfig cfg = good_config();
      cfg.vocab_size = c.vocab;
      cfg.train = {{4, 1, 10}};  // valid for every vocab in the table (V >= 5)
      cfg.test = {{4, 1, 10}};
      (std::string(which) == "mqar.train" ? cfg.train : cfg.test).push_back(c.seg);
      std::vector<std::string> names = c.names;
      names.push_back(which);
      names.push_back("segment 2");
      SCOPED_TRACE(std::string(which) + " " + format_segment(c.seg) + " V=" +
                   std::to_string(c.vocab));
      expect_config_error([&] { validate(cfg); }, names);
      const Split split = std::string(which) == "mqar.train" ? Split::train : Split::test;
      expect_config_error(
          [&] {
            MqarDataset(split == Split::train ? cfg.train : cfg.test, cfg.vocab_size, 0.01f,
                        false, 1, split);
          },
          names);
    }
  }
  // Values: [V/2, V) always holds more tokens than keys [1, V/2), so when the keys fit the values
  // fit too; the binding vocabulary error is the keys one, which must name model.vocab_size.
  expect_config_error([] { validate_segment({8, 2, 1}, 4, "mqar.test"); },
                      {"mqar.test", "model.vocab_size"});

  MqarConfig bad_a = good_config();
  bad_a.power_a = 0.0f;
  expect_config_error([&] { validate(bad_a); }, {"mqar.power_a"});
  MqarConfig empty_train = good_config();
  empty_train.train.clear();
  expect_config_error([&] { validate(empty_train); }, {"mqar.train"});
  MqarConfig empty_test = good_config();
  empty_test.test.clear();
  expect_config_error([&] { validate(empty_test); }, {"mqar.test"});
}

TEST(MqarConfigCheck, ParseAndFormatSegments) {
  const std::vector<MqarSegment> s = parse_segments("64:4:20000,128:8:1000", "mqar.train");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].seq_len, 64);
  EXPECT_EQ(s[0].num_kv, 4);
  EXPECT_EQ(s[0].count, 20000);
  EXPECT_EQ(s[1].seq_len, 128);
  EXPECT_EQ(s[1].num_kv, 8);
  EXPECT_EQ(s[1].count, 1000);
  EXPECT_EQ(format_segments(s), "64:4:20000,128:8:1000");
  EXPECT_EQ(format_segments(parse_segments(" 256:16:3000000000 , 64:4:1 ", "mqar.test")),
            "256:16:3000000000,64:4:1");
  for (const char* bad : {"", "  ", "64:4", "64:4:1:2", "a:4:1", "64:4:1,,128:8:1", "64:4:1,",
                          "64:-4:1", "64::1", "64:4:1x", "99999999999:4:1", "64;4;1"}) {
    SCOPED_TRACE(std::string("'") + bad + "'");
    expect_config_error([&] { parse_segments(bad, "mqar.test"); }, {"mqar.test"});
  }
}

// ---- metrics --------------------------------------------------------------------------------

TEST(MqarMetrics, DefaultEdgesArePowersOfTwo) {
  EXPECT_EQ(default_gap_edges(64), (std::vector<int64_t>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(default_gap_edges(65), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64}));
  EXPECT_THROW(EvalAccumulator(1, {}), std::invalid_argument);
  EXPECT_THROW(EvalAccumulator(1, {1, 4, 4}), std::invalid_argument);
}

TEST(MqarMetrics, ZoologyAccuracyDiffersFromTokenAccuracy) {
  // Example 0 (segment 0): one label, right. Example 1 (segment 2): three labels, all wrong.
  // Token accuracy would be 1/4; Zoology's mean of per-example means is (1 + 0) / 2.
  MqarBatch b;
  b.B = 2;
  b.T = 10;
  b.inputs.assign(20, 0);
  b.example_segment = {0, 2};
  b.example_index = {0, 1};
  b.label_row = {4, 13, 15, 17};
  b.label_target = {100, 101, 102, 103};
  b.label_distance = {3, 2, 9, 40};
  b.label_example = {0, 1, 1, 1};
  const std::vector<int> pred = {100, 7, 7, 7};
  const std::vector<float> loss = {0.5f, 1.0f, 2.0f, 4.5f};

  EvalAccumulator acc(3, {1, 4, 8, 16});
  acc.add(b, pred.data(), loss.data());
  const EvalPoint p = acc.result(123);
  EXPECT_EQ(p.step, 123);
  EXPECT_FLOAT_EQ(p.accuracy, 0.5f);
  EXPECT_FLOAT_EQ(p.loss, 2.0f);
  ASSERT_EQ(p.segment_accuracy.size(), 3u);
  EXPECT_FLOAT_EQ(p.segment_accuracy[0], 1.0f);
  EXPECT_TRUE(std::isnan(p.segment_accuracy[1])) << "segment without examples";
  EXPECT_FLOAT_EQ(p.segment_accuracy[2], 0.0f);
  // Buckets [1,4): d=3 (right), d=2 (wrong); [4,8): empty; [8,16): d=9; [16,inf): d=40.
  EXPECT_EQ(p.gap_count, (std::vector<int64_t>{2, 0, 1, 1}));
  EXPECT_FLOAT_EQ(p.gap_accuracy[0], 0.5f);
  EXPECT_TRUE(std::isnan(p.gap_accuracy[1]));
  EXPECT_FLOAT_EQ(p.gap_accuracy[2], 0.0f);
  EXPECT_FLOAT_EQ(p.gap_accuracy[3], 0.0f);

  // Feeding the same examples as two batches gives the same numbers.
  MqarBatch b0 = b, b1 = b;
  b0.B = 1;
  b0.example_segment = {0};
  b0.label_row = {4};
  b0.label_target = {100};
  b0.label_distance = {3};
  b0.label_example = {0};
  b1.B = 1;
  b1.example_segment = {2};
  b1.label_row = {3, 5, 7};
  b1.label_target = {101, 102, 103};
  b1.label_distance = {2, 9, 40};
  b1.label_example = {0, 0, 0};
  EvalAccumulator split(3, {1, 4, 8, 16});
  split.add(b0, pred.data(), loss.data());
  split.add(b1, pred.data() + 1, loss.data() + 1);
  const EvalPoint q = split.result(123);
  EXPECT_FLOAT_EQ(q.accuracy, p.accuracy);
  EXPECT_FLOAT_EQ(q.loss, p.loss);
  EXPECT_EQ(q.gap_count, p.gap_count);
  split.reset();
  EXPECT_TRUE(std::isnan(split.result(0).accuracy));
}

TEST(MqarMetrics, OnGeneratedBatches) {
  // Mixed K: per-example accuracy weights a K=2 example like a K=8 one.
  MqarDataset ds({{32, 2, 40}, {64, 8, 40}}, 256, 0.5f, false, 4, Split::test);
  EvalAccumulator perfect(2, default_gap_edges(ds.max_seq_len()));
  EvalAccumulator half(2, default_gap_edges(ds.max_seq_len()));
  long labels = 0;
  double token_hits = 0;
  for (long first = 0; first < ds.size(); first += 32) {
    const MqarBatch b = make_batch(ds, first, 32, false);
    std::vector<int> pred = b.label_target;
    const std::vector<float> loss(b.num_labels(), 0.25f);
    perfect.add(b, pred.data(), loss.data());
    // Wrong on every label of segment 1 beyond its first two: segment 1 accuracy 2/8.
    std::vector<int> seen(b.B, 0);
    for (int n = 0; n < b.num_labels(); ++n) {
      const int ex = b.label_example[n];
      if (b.example_segment[ex] == 1 && seen[ex]++ >= 2) pred[n] = 0;
      token_hits += pred[n] == b.label_target[n];
    }
    half.add(b, pred.data(), loss.data());
    labels += b.num_labels();
  }
  EXPECT_EQ(labels, 40 * 2 + 40 * 8);
  const EvalPoint p = perfect.result(0);
  EXPECT_FLOAT_EQ(p.accuracy, 1.0f);
  EXPECT_FLOAT_EQ(p.loss, 0.25f);
  EXPECT_EQ(std::accumulate(p.gap_count.begin(), p.gap_count.end(), int64_t{0}), labels);
  for (size_t k = 0; k < p.gap_count.size(); ++k)
    if (p.gap_count[k] > 0) {
      EXPECT_FLOAT_EQ(p.gap_accuracy[k], 1.0f);
    }
  EXPECT_EQ(p.gap_count[0], 0) << "no distance below 2";
  const EvalPoint h = half.result(0);
  EXPECT_FLOAT_EQ(h.segment_accuracy[0], 1.0f);
  EXPECT_FLOAT_EQ(h.segment_accuracy[1], 0.25f);
  EXPECT_FLOAT_EQ(h.accuracy, 0.625f);  // (1 + 0.25) / 2
  EXPECT_NEAR(token_hits / labels, (80 + 80) / 400.0, 1e-12);  // token accuracy 0.4 differs
}

}  // namespace
}  // namespace statex
