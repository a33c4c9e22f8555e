#pragma once
// Index helpers shared by the per-timestep references (gla_reference.cpp,
// gated_delta_reference.cpp): offsets of row (b, t, h) in a [B, T, H, width] tensor and of the
// (b, h) state in a [B, H, K, V] tensor.
#include <cstddef>

namespace statex::reference {

inline size_t row(int b, int t, int h, int T, int H, int width) {
  return ((size_t(b) * T + t) * H + h) * size_t(width);
}
inline size_t state_at(int b, int h, int H, int K, int V) {
  return (size_t(b) * H + h) * size_t(K) * V;
}

}  // namespace statex::reference
