#pragma once
#include "sim/model/mixer.h"

namespace statex {
std::unique_ptr<Mixer> make_gated_deltanet_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                                 const MixerBinding& bind, int max_tokens,
                                                 int chunk);
}  // namespace statex
