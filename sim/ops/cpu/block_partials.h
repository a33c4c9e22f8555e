#pragma once
// Deterministic column reductions over rows: each fixed block of rows writes its own partial
// sums (one thread per block), then the partials are added here in block order, so the result
// does not depend on the thread count.
#include <cstddef>
#include <vector>

namespace statex {

// out[c] += sum_{b < nblocks} partial[b * C + c], summed in double in block order.
inline void add_block_partials(float* out, const std::vector<double>& partial, int nblocks,
                               int C) {
  for (int c = 0; c < C; ++c) {
    double s = 0;
    for (int b = 0; b < nblocks; ++b) s += partial[size_t(b) * C + c];
    out[c] += float(s);
  }
}

}  // namespace statex
