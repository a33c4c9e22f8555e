#include "sim/model/mixer.h"

#include "sim/model/attention_mixer.h"
#include "sim/model/gla_mixer.h"
#include "sim/model/mamba2_mixer.h"

namespace statex {

std::unique_ptr<Mixer> make_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                  const MixerBinding& bind, int max_tokens, int chunk) {
  if (cfg.model == "attention") return make_attention_mixer(cfg, be, bind, max_tokens);
  if (cfg.model == "mamba2") return make_mamba2_mixer(cfg, layer, be, bind, max_tokens, chunk);
  return make_gla_mixer(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
