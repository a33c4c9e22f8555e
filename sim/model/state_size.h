#pragma once
// State-size accounting (docs/design.md §1 "State accounting"), per layer, in scalars
// (bytes = 4 x scalars for fp32 state). Three conventions (StateConvention):
//
// recurrent (ours): the recurrent state only; the conv state is reported apart.
//   GLA layer:    H * K * Vh = Dk * Dv / H           conv (short conv on): (W-1) * (2 Dk + Dv)
//   Gated DeltaNet layer: H * K * V = Dk * Dv / H   conv (short conv on): (W-1) * (2 Dk + Dv)
//   Mamba2 layer: Hm * P * N = d_inner * N           conv: (W-1) * (d_inner + 2 G N)
//   Attention:    KV cache at length T: 2 T D (keys and values, D wide each); it grows with T,
//                 so it is counted at the evaluated length kv_len (> 0 required for attention).
//                 conv (short conv on): (W-1) * 3 D
// recurrent+conv: the two above summed (the (W-1) x channels a causal conv carries).
//
// zoology: what HazyResearch/zoology's state_size() methods return (summed over layers by
// zoology/model.py _compute_state_size, which then multiplies by 4: Zoology's logged
// "state_size" is our zoology bytes). Per layer:
//   GLA:    key_dim * head_v_dim = Dk * Dv / H, plus W * channels for each fla ShortConvolution
//           (use_short_conv): W * (2 Dk + Dv)                     (zoology/mixers/gla.py)
//   Mamba2: 2 * d_model * d_state = 2 D N, whatever expand, head_dim, ngroups; no conv state
//                                                                   (zoology/mixers/mamba2.py)
//   Gated DeltaNet: num_heads * head_k_dim * head_v_dim = Dk * Dv / H; its short conv is not
//           counted                                                 (zoology/mixers/gated_delta_net.py)
//   Attention: MHA: 2 * d_model * T at the longest test length T   (zoology/mixers/attention.py)
//           Zoology's MHA has no short conv; ours, when on, is counted by the rule Zoology
//           applies to the short convs it does count (ShortConvolution: W * channels): W * 3 D.
// A family added later must get a case in zoology_layer_state_scalars (a switch over Family
// without default; -Wswitch is an error in state_size.cpp) and a name in family_of.
#include <string>

#include "sim/core/config.h"
#include "sim/io/run_record.h"

namespace statex {

// The token-mixer families (model.model). family_of throws std::invalid_argument for a name it
// does not know, so a family missing here cannot get a state size of any convention.
enum class Family { gla, mamba2, gated_deltanet, attention };
inline constexpr Family kFamilies[] = {Family::gla, Family::mamba2, Family::gated_deltanet,
                                       Family::attention};
Family family_of(const std::string& model);
const char* family_name(Family f);

enum class StateConvention { recurrent, recurrent_conv, zoology };
inline constexpr StateConvention kStateConventions[] = {
    StateConvention::recurrent, StateConvention::recurrent_conv, StateConvention::zoology};
// "recurrent", "recurrent+conv", "zoology".
const char* convention_name(StateConvention c);
// The inverse of convention_name; throws ConfigError naming `option` and the choices.
StateConvention parse_state_convention(const std::string& name,
                                       const std::string& option = "--state");
// The model total of a StateSize in convention c, in scalars. zoology needs
// StateSize::layer_zoology_state_scalars (empty in results files written before it existed:
// throws std::runtime_error then).
int64_t total_state_scalars(const StateSize& s, StateConvention c);

// Zoology's state_size() of layer `layer` (see above), in scalars; kv_len = T for attention.
int64_t zoology_layer_state_scalars(const ModelConfig& cfg, int layer, int kv_len);

// All three conventions, per layer.
StateSize compute_state_size(const ModelConfig& cfg, int kv_len = 0);

}  // namespace statex
