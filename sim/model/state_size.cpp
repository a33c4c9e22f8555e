#include "sim/model/state_size.h"

#include <stdexcept>

namespace statex {

StateSize compute_state_size(const ModelConfig& c, int kv_len) {
  StateSize s;
  if (c.model == "attention") {
    if (kv_len <= 0)
      throw std::invalid_argument("attention state (KV cache) needs the evaluated length T > 0");
    s.kv_cache_len = kv_len;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    MixerShape m = c.layer_shape(l);
    int64_t W1 = c.conv_width - 1;
    if (c.model == "attention") {
      s.layer_state_scalars.push_back(2 * int64_t(kv_len) * c.d_model);
      s.layer_conv_state_scalars.push_back(c.use_short_conv ? W1 * 3 * c.d_model : 0);
    } else if (c.model == "mamba2") {
      int64_t N = m.d_state, di = c.d_inner();
      s.layer_state_scalars.push_back(di * N);
      s.layer_conv_state_scalars.push_back(W1 * (di + 2 * int64_t(c.ngroups) * N));
    } else {
      int64_t Dk = c.key_dim(), Dv = c.value_dim();
      s.layer_state_scalars.push_back(Dk * Dv / m.heads);
      s.layer_conv_state_scalars.push_back(c.use_short_conv ? W1 * (2 * Dk + Dv) : 0);
    }
  }
  return s;
}

int64_t StateSize::total_state_scalars() const {
  int64_t t = 0;
  for (auto x : layer_state_scalars) t += x;
  return t;
}

int64_t StateSize::total_conv_state_scalars() const {
  int64_t t = 0;
  for (auto x : layer_conv_state_scalars) t += x;
  return t;
}

}  // namespace statex
