// MQAR generator (semantics in mqar.h). Counter-based: each example owns a PRNG stream seeded
// by a hash of (seed, split, segment, index), so generation order and threads do not matter.
#include "sim/task/mqar.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace statex {
namespace {

// SplitMix64 step + finaliser: a bijection on 64-bit words with good avalanche.
uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Domain-separation tags: arbitrary distinct constants ("MQAR" and one per split).
constexpr uint64_t kMqarTag = 0x4d51415200000000ULL;
constexpr uint64_t kSplitTag[2] = {0x7472616996a1e5c3ULL /*train*/, 0x74657374d2c86f1bULL /*test*/};

// xoshiro256**: small, fast, statistically strong; state filled from SplitMix64.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform integer in [0, n), n > 0, unbiased (Lemire's multiply-and-reject).
  uint64_t below(uint64_t n) {
    __uint128_t m = static_cast<__uint128_t>(next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>(next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  // Uniform double in (0, 1): never 0, so log() is finite.
  double open01() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// K distinct integers from [0, n) in uniformly random order: Floyd's subset sampling, then a
// Fisher-Yates shuffle (Floyd's output order is not uniform). O(K^2), K is small.
void sample_distinct(Xoshiro256& rng, int n, int k, int* out) {
  int filled = 0;
  for (int j = n - k; j < n; ++j) {
    const int t = static_cast<int>(rng.below(static_cast<uint64_t>(j) + 1));
    const bool taken = std::find(out, out + filled, t) != out + filled;
    out[filled++] = taken ? j : t;
  }
  for (int i = k - 1; i > 0; --i) std::swap(out[i], out[rng.below(static_cast<uint64_t>(i) + 1)]);
}

}  // namespace

const char* split_name(Split split) { return split == Split::train ? "train" : "test"; }

std::string format_segment(const MqarSegment& seg) {
  return std::to_string(seg.seq_len) + ":" + std::to_string(seg.num_kv) + ":" +
         std::to_string(seg.count);
}

void validate_segment(const MqarSegment& seg, int vocab_size, const std::string& option,
                      int position) {
  const std::string where = option + ": segment " + std::to_string(position) + " (" +
                            format_segment(seg) + ")";
  const int T = seg.seq_len, K = seg.num_kv, V = vocab_size;
  if (seg.count < 1)
    throw ConfigError(where + " has count " + std::to_string(seg.count) +
                      "; each segment needs count >= 1 examples");
  if (K < 1)
    throw ConfigError(where + " has K=" + std::to_string(K) +
                      "; K (key-value pairs) must be >= 1");
  if (T < 1 || T % 2 != 0)
    throw ConfigError(where + " has T=" + std::to_string(T) +
                      "; T must be a positive even length (the query region is made of "
                      "two-token slots), e.g. " + std::to_string(T < 2 ? 64 : T + 1));
  if (4L * K > T)
    throw ConfigError(where + " needs 4*K <= T (the 2K-token context plus room for K queries); "
                      "lower K to at most " + std::to_string(T / 4) + " or raise T to at least " +
                      std::to_string(4L * K));
  const int num_keys = V / 2 - 1, num_values = V - V / 2;
  if (K > num_keys)
    throw ConfigError(where + " needs K=" + std::to_string(K) + " distinct keys but "
                      "model.vocab_size=" + std::to_string(V) + " has only " +
                      std::to_string(std::max(num_keys, 0)) + " (keys come from [1, V/2)); raise "
                      "model.vocab_size to at least " + std::to_string(2 * K + 2) + " or lower K");
  if (K > num_values)
    throw ConfigError(where + " needs K=" + std::to_string(K) + " distinct values but "
                      "model.vocab_size=" + std::to_string(V) + " has only " +
                      std::to_string(std::max(num_values, 0)) + " (values come from [V/2, V)); "
                      "raise model.vocab_size or lower K");
  if (V <= T)
    throw ConfigError(where + ": model.vocab_size=" + std::to_string(V) + " must exceed T=" +
                      std::to_string(T) + " (Zoology's assert vocab_size > input_seq_len, kept so "
                      "results stay comparable); raise model.vocab_size above " +
                      std::to_string(T) + " or shorten T");
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
    // p(g) ∝ (g+1)^(a-1); the race below needs 1/w = (g+1)^(1-a) (the factor a cancels).
    const int space = (seg.seq_len - 2 * seg.num_kv) / 2;
    std::vector<double> inv_w(space);
    for (int g = 0; g < space; ++g) inv_w[g] = std::pow(static_cast<double>(g + 1), 1.0 - power_a);
    inv_gap_w_.push_back(std::move(inv_w));
  }
  total_ = starts_.back();
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

void MqarDataset::example(long index, int* inputs, int* targets, int* distance) const {
  const int s = segment_of(index);
  const MqarSegment& seg = segments_[s];
  const int T = seg.seq_len, K = seg.num_kv, C = 2 * K, V = vocab_;
  const int half = V / 2;
  Xoshiro256 rng(mqar_example_seed(seed_, split_, s, index - starts_[s]));

  std::fill(inputs, inputs + T, 0);
  std::fill(targets, targets + T, kIgnoreLabel);
  if (distance) std::fill(distance, distance + T, -1);

  // Keys from [1, V/2), values from [V/2, V), each K distinct in random order.
  std::vector<int> keys(K), values(K);
  sample_distinct(rng, half - 1, K, keys.data());
  sample_distinct(rng, V - half, K, values.data());
  for (int i = 0; i < K; ++i) {
    keys[i] += 1;
    values[i] += half;
    inputs[2 * i] = keys[i];
    inputs[2 * i + 1] = values[i];
  }

  // K gaps without replacement, successive draws ∝ p(g): exponential race. Gap g gets arrival
  // time E_g = -log(u_g) / w_g ~ Exp(w_g); sorting by arrival gives exactly the successive
  // weighted draw order (memorylessness), so the i-th arrival is draw i = the gap of key i.
  const std::vector<double>& inv_w = inv_gap_w_[s];
  const int space = static_cast<int>(inv_w.size());
  std::vector<std::pair<double, int>> race(space);
  for (int g = 0; g < space; ++g) race[g] = {-std::log(rng.open01()) * inv_w[g], g};
  std::partial_sort(race.begin(), race.begin() + K, race.end());
  for (int i = 0; i < K; ++i) {
    const int pos = C + 2 * race[i].second;
    inputs[pos] = keys[i];
    targets[pos] = values[i];
    if (distance) distance[pos] = pos - 2 * i;
  }

  // Zoology: every remaining 0 gets a uniform token from [0, V) (the context has no zeros).
  if (random_non_queries_)
    for (int t = C; t < T; ++t)
      if (inputs[t] == 0) inputs[t] = static_cast<int>(rng.below(static_cast<uint64_t>(V)));
}

std::vector<int> MqarBatch::dense_targets() const {
  std::vector<int> dense(static_cast<size_t>(B) * T, kIgnoreLabel);
  for (int n = 0; n < num_labels(); ++n) dense[label_row[n]] = label_target[n];
  return dense;
}

MqarBatch make_batch(const MqarDataset& ds, long first_index, int batch_size, bool wrap) {
  const long size = ds.size();
  if (batch_size < 1) throw std::invalid_argument("make_batch: batch_size must be >= 1");
  if (!wrap && (first_index < 0 || first_index >= size))
    throw std::out_of_range("make_batch: first index " + std::to_string(first_index) +
                            " outside a set of " + std::to_string(size));
  MqarBatch batch;
  batch.B = wrap ? batch_size : static_cast<int>(std::min<long>(batch_size, size - first_index));
  const int B = batch.B;
  batch.example_index.resize(B);
  batch.example_segment.resize(B);
  int T = 0;
  for (int b = 0; b < B; ++b) {
    const long idx = wrap ? ((first_index + b) % size + size) % size : first_index + b;
    batch.example_index[b] = idx;
    batch.example_segment[b] = ds.segment_of(idx);
    T = std::max(T, ds.segments()[batch.example_segment[b]].seq_len);
  }
  batch.T = T;
  const size_t BT = static_cast<size_t>(B) * T;
  batch.inputs.assign(BT, 0);  // right padding: token 0
  std::vector<int> targets(BT, kIgnoreLabel), distance(BT, -1);

  // Each example writes its own row: no shared state, any thread count gives the same bytes.
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const size_t row = static_cast<size_t>(b) * T;
    ds.example(batch.example_index[b], &batch.inputs[row], &targets[row], &distance[row]);
  }

  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const size_t r = static_cast<size_t>(b) * T + t;
      if (targets[r] == kIgnoreLabel) continue;
      batch.label_row.push_back(static_cast<int>(r));
      batch.label_target.push_back(targets[r]);
      batch.label_distance.push_back(distance[r]);
      batch.label_example.push_back(b);
    }
  return batch;
}

}  // namespace statex
