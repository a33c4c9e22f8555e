#pragma once
// Counter-based randomness of the task generators (docs/tasks.md, "Reproducibility"): SplitMix64
// hashing of (seed, split, segment, index) into a per-example xoshiro256** stream, and the
// sampling helpers every task uses.
#include <algorithm>
#include <cstdint>
#include <utility>

namespace statex {

// SplitMix64 step + finaliser: a bijection on 64-bit words with good avalanche.
inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

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
  int below(int n) { return static_cast<int>(below(static_cast<uint64_t>(n))); }
  // Uniform double in (0, 1): never 0, so log() is finite.
  double open01() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// K distinct integers from [0, n) in uniformly random order: Floyd's subset sampling, then a
// Fisher-Yates shuffle (Floyd's output order is not uniform). O(K^2), K is small.
inline void sample_distinct(Xoshiro256& rng, int n, int k, int* out) {
  int filled = 0;
  for (int j = n - k; j < n; ++j) {
    const int t = static_cast<int>(rng.below(static_cast<uint64_t>(j) + 1));
    const bool taken = std::find(out, out + filled, t) != out + filled;
    out[filled++] = taken ? j : t;
  }
  for (int i = k - 1; i > 0; --i) std::swap(out[i], out[rng.below(static_cast<uint64_t>(i) + 1)]);
}

}  // namespace statex
