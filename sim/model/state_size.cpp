#include "sim/model/state_size.h"

#include <stdexcept>

// A Family without its case in a switch below is a build error, not a warning: each family must
// say what it counts in every convention (docs/design.md §1 "State accounting").
#pragma GCC diagnostic error "-Wswitch"

namespace statex {

Family family_of(const std::string& model) {
  for (Family f : kFamilies)
    if (model == family_name(f)) return f;
  throw std::invalid_argument("state size: unknown model family '" + model +
                              "' (sim/model/state_size.h lists the families with a state count)");
}

const char* family_name(Family f) {
  switch (f) {
    case Family::gla: return "gla";
    case Family::mamba2: return "mamba2";
    case Family::gated_deltanet: return "gated_deltanet";
    case Family::attention: return "attention";
  }
  throw std::logic_error("family_name: bad Family");
}

const char* convention_name(StateConvention c) {
  switch (c) {
    case StateConvention::recurrent: return "recurrent";
    case StateConvention::recurrent_conv: return "recurrent+conv";
    case StateConvention::zoology: return "zoology";
  }
  throw std::logic_error("convention_name: bad StateConvention");
}

StateConvention parse_state_convention(const std::string& name, const std::string& option) {
  for (StateConvention c : kStateConventions)
    if (name == convention_name(c)) return c;
  throw ConfigError(option + ": unknown state-size convention '" + name +
                    "' (use recurrent, recurrent+conv or zoology)");
}

int64_t total_state_scalars(const StateSize& s, StateConvention c) {
  switch (c) {
    case StateConvention::recurrent: return s.total_state_scalars();
    case StateConvention::recurrent_conv: return s.total_state_with_conv_scalars();
    case StateConvention::zoology:
      if (s.layer_zoology_state_scalars.size() != s.layer_state_scalars.size())
        throw std::runtime_error("no Zoology state size recorded (file written before it existed)");
      return s.total_zoology_state_scalars();
  }
  throw std::logic_error("total_state_scalars: bad StateConvention");
}

int64_t zoology_layer_state_scalars(const ModelConfig& c, int layer, int kv_len) {
  const MixerShape m = c.layer_shape(layer);
  const int64_t D = c.d_model, W = c.conv_width;
  switch (family_of(c.model)) {
    case Family::gla: {  // GatedLinearAttention.state_size: key_dim * head_v_dim + its convs
      const int64_t Dk = c.key_dim(), Dv = c.value_dim();
      const int64_t conv = c.use_short_conv ? W * (Dk + Dk + Dv) : 0;  // q, k, v convs
      return Dk * (Dv / m.heads) + conv;
    }
    case Family::mamba2:  // Mamba2.state_size: 2 * d_model * d_state (no conv, no expand)
      return 2 * D * m.d_state;
    case Family::gated_deltanet:  // GatedDeltaNet.state_size: H * head_k_dim * head_v_dim
      return int64_t(m.heads) * (c.key_dim() / m.heads) * (c.value_dim() / m.heads);
    case Family::attention:  // MHA.state_size: 2 * d_model * sequence_length
      if (kv_len <= 0)
        throw std::invalid_argument("attention state (KV cache) needs the evaluated length T > 0");
      return 2 * int64_t(kv_len) * D + (c.use_short_conv ? W * 3 * D : 0);
  }
  throw std::logic_error("zoology_layer_state_scalars: bad Family");
}

StateSize compute_state_size(const ModelConfig& c, int kv_len) {
  StateSize s;
  const Family family = family_of(c.model);
  if (family == Family::attention) {
    if (kv_len <= 0)
      throw std::invalid_argument("attention state (KV cache) needs the evaluated length T > 0");
    s.kv_cache_len = kv_len;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    MixerShape m = c.layer_shape(l);
    int64_t W1 = c.conv_width - 1;
    switch (family) {
      case Family::attention:
        s.layer_state_scalars.push_back(2 * int64_t(kv_len) * c.d_model);
        s.layer_conv_state_scalars.push_back(c.use_short_conv ? W1 * 3 * c.d_model : 0);
        break;
      case Family::mamba2: {
        int64_t N = m.d_state, di = c.d_inner();
        s.layer_state_scalars.push_back(di * N);
        s.layer_conv_state_scalars.push_back(W1 * (di + 2 * int64_t(c.ngroups) * N));
        break;
      }
      case Family::gla:
      case Family::gated_deltanet: {  // H heads of K x V = Dk Dv / H
        int64_t Dk = c.key_dim(), Dv = c.value_dim();
        s.layer_state_scalars.push_back(Dk * Dv / m.heads);
        s.layer_conv_state_scalars.push_back(c.use_short_conv ? W1 * (2 * Dk + Dv) : 0);
        break;
      }
    }
    s.layer_zoology_state_scalars.push_back(zoology_layer_state_scalars(c, l, kv_len));
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

int64_t StateSize::total_zoology_state_scalars() const {
  int64_t t = 0;
  for (auto x : layer_zoology_state_scalars) t += x;
  return t;
}

}  // namespace statex
