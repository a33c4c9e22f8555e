#pragma once
#include "sim/model/mixer.h"

namespace statex {
// Causal softmax multi-head attention (docs/design.md §1 "Softmax attention").
std::unique_ptr<Mixer> make_attention_mixer(const ModelConfig& cfg, Backend& be,
                                            const MixerBinding& bind, int max_tokens);
}  // namespace statex
