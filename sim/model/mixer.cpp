#include "sim/model/mixer.h"

#include <stdexcept>

#include "sim/model/gated_deltanet_mixer.h"
#include "sim/model/attention_mixer.h"
#include "sim/model/gla_mixer.h"
#include "sim/model/mamba2_mixer.h"

namespace statex {

ParamRef MixerBinding::stacked(const char* const* names, const int* rows, int parts,
                               int cols) const {
  const ParamRef first = (*this)(names[0]);
  const float* next = first.w;
  for (int i = 0; i < parts; ++i) {
    if ((*this)(names[i]).w != next)
      throw std::logic_error(prefix + ": input projection weights are not stacked in order");
    next += size_t(rows[i]) * cols;
  }
  return first;
}

std::unique_ptr<Mixer> make_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                  const MixerBinding& bind, int max_tokens, int chunk) {
  if (cfg.model == "attention") return make_attention_mixer(cfg, be, bind, max_tokens);
  if (cfg.model == "mamba2") return make_mamba2_mixer(cfg, layer, be, bind, max_tokens, chunk);
  if (cfg.model == "gated_deltanet")
    return make_gated_deltanet_mixer(cfg, layer, be, bind, max_tokens, chunk);
  return make_gla_mixer(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
