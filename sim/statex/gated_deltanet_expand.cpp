// StateX inherit mode for Gated DeltaNet tensors (definition: gated_deltanet_expand.h).
#include "sim/statex/gated_deltanet_expand.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace statex {

bool inherit_gated_deltanet_tensor(const std::string& local, const ParamEntry& e,
                                   const ParamEntry& old, const float* old_data, float* dst,
                                   int heads_old, int heads_new) {
  const bool per_head = local == "a_proj.weight" || local == "b_proj.weight" || local == "A_log" ||
                        local == "dt_bias";
  if (heads_new < 1 || heads_old % heads_new != 0)
    throw std::logic_error("StateX: " + std::to_string(heads_old) + " heads cannot be merged " +
                           "into " + std::to_string(heads_new) + " exactly");
  if (per_head) {
    // [H, row] -> [H', row]: merged head m = mean of old heads m r .. m r + r - 1.
    const int r = heads_old / heads_new;
    const int64_t row = old.numel() / heads_old;
    for (int m = 0; m < heads_new; ++m)
      for (int64_t c = 0; c < row; ++c) {
        double s = 0;
        for (int j = 0; j < r; ++j) s += old_data[(int64_t(m) * r + j) * row + c];
        dst[int64_t(m) * row + c] = float(s / r);
      }
    return heads_new != heads_old;
  }
  if (local == "o_norm.weight") {  // [V] -> [r V], tiled
    for (int64_t j = 0; j < e.numel(); ++j) dst[j] = old_data[j % old.numel()];
    return heads_new != heads_old;
  }
  if (old.shape != e.shape) throw std::logic_error("StateX: unexpected reshape of " + e.name);
  std::copy_n(old_data, e.numel(), dst);
  return false;
}

}  // namespace statex
