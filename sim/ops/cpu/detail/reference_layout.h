#pragma once
// Helpers shared by the per-timestep references (gla_reference.cpp, gated_delta_reference.cpp):
// offsets of row (b, t, h) in a [B, T, H, width] tensor and of the (b, h) state in a [B, H, K, V]
// tensor, the readout o = scale q S, and the store of a double state.
#include <cstddef>
#include <vector>

namespace statex::reference {

inline size_t row(int b, int t, int h, int T, int H, int width) {
  return ((size_t(b) * T + t) * H + h) * size_t(width);
}
inline size_t state_at(int b, int h, int H, int K, int V) {
  return (size_t(b) * H + h) * size_t(K) * V;
}

// o [V] = scale * q [K] . S [K, V]  (accumulated in double)
inline void readout(float* o, const float* q, const std::vector<double>& S, int K, int V,
                    float scale) {
  for (int j = 0; j < V; ++j) {
    double acc = 0;
    for (int i = 0; i < K; ++i) acc += double(q[i]) * S[size_t(i) * V + j];
    o[j] = float(double(scale) * acc);
  }
}

// dst [K * V] = S (rounded to float)
inline void store_state(float* dst, const std::vector<double>& S) {
  for (size_t i = 0; i < S.size(); ++i) dst[i] = float(S[i]);
}

}  // namespace statex::reference
