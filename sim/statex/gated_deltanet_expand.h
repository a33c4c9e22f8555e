#pragma once
// StateX for Gated DeltaNet (docs/design.md §3): the selected layer's H heads are merged into
// H' = statex.gla_heads heads (default 1), as for GLA. Dk and Dv do not change, so neither do
// the q/k/v/g/o projections and the short convs; each head's state grows from K x V to
// (r K) x (r V) with r = H / H', so the layer's state grows x r.
// Tensors whose shape follows the head count:
//   a_proj.weight [H, D], b_proj.weight [H, D], A_log [H], dt_bias [H]   (one entry per head)
//   o_norm.weight [V] (per-head norm weight, shared by the heads)
// reinit (the paper's mode, as GLA): every mixer tensor fresh (fla init) and the block's
//   pre-mixer norm reset to one.
// inherit: everything that keeps its shape is copied; merged head m takes the MEAN over the old
//   heads it merges (m r .. m r + r - 1) of their a_proj / b_proj rows, A_log and dt_bias (so a
//   merged head's decay and beta logits start at the average of its heads' logits); o_norm.weight
//   is tiled r times (the old head's norm weight on each of the r old heads' slots).
#include <string>

#include "sim/core/params.h"

namespace statex {

// Fills dst (the new tensor `e`) under inherit mode from the old tensor `old` of the same name
// at old_data. `local` is the name relative to the mixer prefix. Returns true when the tensor
// was reshaped (its AdamW moments must restart).
bool inherit_gated_deltanet_tensor(const std::string& local, const ParamEntry& e,
                                   const ParamEntry& old, const float* old_data, float* dst,
                                   int heads_old, int heads_new);

}  // namespace statex
