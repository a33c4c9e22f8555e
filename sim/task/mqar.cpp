// The task generator (semantics in mqar.h and tasks.h). Counter-based: each example owns a PRNG
// stream seeded by a hash of (seed, split, segment, index), so generation order and threads do
// not matter.
#include "sim/task/mqar.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sim/task/rng.h"

namespace statex {
namespace {

// Domain-separation tags: arbitrary distinct constants ("MQAR" and one per split).
constexpr uint64_t kMqarTag = 0x4d51415200000000ULL;
constexpr uint64_t kSplitTag[3] = {0x7472616996a1e5c3ULL /*train*/, 0x74657374d2c86f1bULL /*test*/,
                                   0x76616c69a3e1c95dULL /*valid*/};

}  // namespace

const char* split_name(Split split) {
  return split == Split::train ? "train" : split == Split::test ? "test" : "valid";
}

uint64_t mqar_example_seed(uint64_t seed, Split split, int segment, long index_in_segment) {
  uint64_t h = splitmix64(seed ^ kMqarTag);
  h = splitmix64(h ^ kSplitTag[static_cast<int>(split)]);
  h = splitmix64(h ^ static_cast<uint64_t>(segment));
  return splitmix64(h ^ static_cast<uint64_t>(index_in_segment));
}

MqarDataset::MqarDataset(const std::vector<MqarSegment>& segments, int vocab_size, float power_a,
                         bool random_non_queries, uint64_t seed, Split split)
    : segments_(segments), vocab_(vocab_size), random_non_queries_(random_non_queries),
      seed_(seed), split_(split) {
  const std::string option = std::string("mqar.") + split_name(split);
  if (segments_.empty())
    throw ConfigError(option + " is empty; give at least one T:K:count segment, e.g. 64:4:1000");
  if (!(power_a > 0.0f) || !std::isfinite(power_a))
    throw ConfigError("mqar.power_a=" + std::to_string(power_a) +
                      " must be a finite number > 0 (0.01 = Zoology's default, 1 = uniform gaps)");
  starts_.push_back(0);
  for (size_t s = 0; s < segments_.size(); ++s) {
    const MqarSegment& seg = segments_[s];
    validate_segment(seg, vocab_size, option, static_cast<int>(s) + 1);
    starts_.push_back(starts_.back() + seg.count);
    inv_gap_w_.push_back(inverse_gap_weights(seg, power_a));
  }
  total_ = starts_.back();
}

std::vector<std::string> MqarDataset::segment_names() const {
  std::vector<std::string> names;
  for (const auto& s : segments_) names.push_back(format_segment(s));
  return names;
}

int MqarDataset::max_seq_len() const {
  int t = 0;
  for (const auto& s : segments_) t = std::max(t, s.seq_len);
  return t;
}

int MqarDataset::segment_of(long index) const {
  if (index < 0 || index >= total_)
    throw std::out_of_range("MQAR example index " + std::to_string(index) + " outside [0, " +
                            std::to_string(total_) + ")");
  return static_cast<int>(std::upper_bound(starts_.begin(), starts_.end(), index) -
                          starts_.begin()) - 1;
}

void MqarDataset::example(long index, const ExampleRow& row) const {
  const int s = segment_of(index);
  Xoshiro256 rng(mqar_example_seed(seed_, split_, s, index - starts_[s]));
  generate_example(segments_[s], vocab_, inv_gap_w_[s], random_non_queries_, rng, row);
}

}  // namespace statex
