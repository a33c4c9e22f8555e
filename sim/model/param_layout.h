#pragma once
// Parameter names, shapes and initialisation of the language model (docs/design.md §1, §4).
//
// Names follow the PyTorch state_dict of the reference modules ([out, in] layout):
//   GLA (fla GLAForCausalLM):    model.embeddings.weight, model.layers.{i}.attn_norm.weight,
//     model.layers.{i}.attn.{q,k,v,g}_proj.weight, attn.gk_proj.0.weight, attn.gk_proj.1.{weight,bias},
//     attn.o_proj.weight, attn.g_norm.weight, attn.{q,k,v}_conv1d.weight [C,1,W] (short conv),
//     model.layers.{i}.mlp_norm.weight, mlp.{gate,up,down}_proj.weight, model.norm.weight,
//     lm_head.weight (untied only).
//   Mamba2 (mamba_ssm MambaLMHeadModel): backbone.embedding.weight, backbone.layers.{i}.norm.weight,
//     backbone.layers.{i}.mixer.{in_proj.weight, conv1d.weight [C,1,W], conv1d.bias, dt_bias, A_log,
//     D, norm.weight, out_proj.weight}, backbone.layers.{i}.norm2.weight, mlp.{gate,up,down}_proj
//     (fla GatedMLP naming; mamba_ssm fuses gate/up into fc1), backbone.norm_f.weight, lm_head.weight.
//   Attention (fla TransformerForCausalLM): as GLA's block names, with attn.{q,k,v,o}_proj.weight
//     [D, D] and, with the short conv, attn.{q,k,v}_conv1d.weight [D,1,W].
// docs/pytorch_names.md gives the full rename table.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/params.h"

namespace statex {

// Name prefixes of one model family.
struct ModelNames {
  std::string embedding, layer_prefix, mixer, pre_norm, mlp_norm, final_norm;
  std::string layer(int i) const { return layer_prefix + std::to_string(i) + "."; }
};
ModelNames model_names(const ModelConfig& cfg);

ParamTable build_param_table(const ModelConfig& cfg);

// Mixer parameter names (relative to "<layer><mixer>.") of one layer, for StateX.
std::vector<std::string> mixer_param_names(const ModelConfig& cfg, int layer);

// Initialises every parameter into `params` (host, size table.total()). Each tensor is drawn
// from its own stream seeded by (seed, name), so one tensor can be re-initialised alone (StateX
// reinit) and the result does not depend on the order of the table.
void init_params(const ModelConfig& cfg, const ParamTable& table, uint64_t seed,
                 std::vector<float>& params);
void init_param(const ModelConfig& cfg, const ParamEntry& e, uint64_t seed, float* dst);

}  // namespace statex
