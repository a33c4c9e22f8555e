#pragma once
// The task generator: segments of MQAR and its variants (sim/task/tasks.h, docs/tasks.md) laid
// out one after another, semantics of Zoology's `zoology/data/multiquery_ar.py`,
// `forgetting_mqar.py` and `compositional_mqar.py` (docs/design.md §2).
//
// Plain MQAR, one example of length T with K key-value pairs, vocab V:
//   positions [0, C), C = 2K:   k1 v1 k2 v2 ... kK vK
//       keys   K distinct tokens from [1, V/2)   (0 is the "blank" token, never a key)
//       values K distinct tokens from [V/2, V)
//   positions [C, T): query region of space = (T - C) / 2 two-token slots. K distinct gaps
//       g_i in {0, ..., space-1} are drawn without replacement with p(g) ∝ a (g+1)^(a-1)
//       (a = power_a; a -> 0 concentrates queries right after the context, a = 1 is uniform).
//       Draws are successive (each draw from the weights of the gaps not yet taken), which is
//       what numpy's choice(replace=False, p=...) does; draw i is the gap of key i, so key 1 (the
//       first draw) follows p(g) exactly.
//       input[C + 2 g_i] = k_i and target[C + 2 g_i] = v_i: the model must emit the value as the
//       next token right after reading the query key.
//   every other position: input 0, target -100 (unlabelled; ignored by loss and accuracy).
//   distance[C + 2 g_i] = (C + 2 g_i) - 2 i: tokens from the key in the context to its query.
//
// random_non_queries (Zoology's option and default, on here too): every remaining 0 of the query
// region gets a token drawn uniformly from [0, V), exactly as Zoology's
// `inputs[inputs == 0] = randint(vocab_size)`. So filler tokens may be 0 again, or equal a key
// or a value of the example; they stay unlabelled.
//
// Reproducibility: an example is a pure function of (seed, split, segment, index within the
// segment). A counter-based hash (SplitMix64 finaliser chained over those four words) seeds a
// per-example xoshiro256** stream, so a dataset is bit-identical for any thread count and any
// order of generation, and growing one segment's count never changes another segment.
// Train, test and validation use disjoint seed spaces: the split tag is hashed in as a domain
// separator, so no two splits ever share a (seed, split, segment, index) tuple and their streams
// are independent (their 64-bit stream seeds collide with probability ~2^-64). The validation
// split (mqar.valid) has its own tag, so adding it changes neither the train nor the test data. Content
// collisions are still possible in tiny configurations (e.g. T=8, K=1, V=16) just as in Zoology.
//
// Constraints per task: validate_segment (tasks.h), ConfigError naming the option. For plain
// MQAR: T even; K >= 1; 4K <= T (space >= K); count >= 1; K <= V/2 - 1 keys; K <= V - V/2
// values; V > T. The last is Zoology's `assert vocab_size > input_seq_len`. It is not needed by the
// generator itself; we keep it so that every configuration accepted here is one Zoology accepts
// and results stay comparable with published MQAR numbers.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/task/dataset.h"
#include "sim/task/tasks.h"

namespace statex {

enum class Split : uint64_t { train = 0, test = 1, valid = 2 };
const char* split_name(Split split);  // "train" | "test" | "valid"

// Seed of the per-example PRNG stream: hash of (seed, split, segment, index_in_segment).
uint64_t mqar_example_seed(uint64_t seed, Split split, int segment, long index_in_segment);

class MqarDataset : public Dataset {
 public:
  // Throws ConfigError if a segment is impossible (see validate_segment) or power_a <= 0.
  MqarDataset(const std::vector<MqarSegment>& segments, int vocab_size, float power_a,
              bool random_non_queries, uint64_t seed, Split split);

  long size() const override { return total_; }
  int num_segments() const override { return static_cast<int>(segments_.size()); }
  std::vector<std::string> segment_names() const override;
  const std::vector<MqarSegment>& segments() const { return segments_; }
  int vocab_size() const { return vocab_; }
  int max_seq_len() const override;
  int segment_of(long index) const override;  // segments laid out one after another
  long segment_start(int segment) const { return starts_[segment]; }
  int seq_len(long index) const override { return segments_[segment_of(index)].seq_len; }
  int num_kv(long index) const { return segments_[segment_of(index)].num_kv; }

  void example(long index, const ExampleRow& row) const override;
  // inputs [T], targets [T] (kIgnoreLabel where unlabelled), distance [T] (key->query distance
  // in tokens at labelled positions, else -1; may be nullptr). Depends only on (seed, split,
  // index).
  void example(long index, int* inputs, int* targets, int* distance) const {
    example(index, ExampleRow{inputs, targets, distance, nullptr});
  }

 private:
  std::vector<MqarSegment> segments_;
  std::vector<long> starts_;                   // [nseg + 1] prefix sums of counts
  std::vector<std::vector<double>> inv_gap_w_; // per segment [space]: 1 / p(g) up to a constant
  long total_ = 0;
  int vocab_ = 0;
  bool random_non_queries_ = true;
  uint64_t seed_ = 0;
  Split split_ = Split::train;
};

}  // namespace statex
