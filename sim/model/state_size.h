#pragma once
// Recurrent-state accounting (docs/design.md §1 "State size accounting"), per layer, in scalars
// (bytes = 4 x scalars for fp32 state). The conv state is reported apart; Zoology's convention
// counts it too, so StateSize::total_state_with_conv_scalars() gives the "recurrent+conv" total.
//   GLA layer:    H * K * Vh = Dk * Dv / H           conv (short conv on): (W-1) * (2 Dk + Dv)
//   Mamba2 layer: Hm * P * N = d_inner * N           conv: (W-1) * (d_inner + 2 G N)
//   Attention:    KV cache at length T: 2 T D (keys and values, D wide each); it grows with T,
//                 so it is counted at the evaluated length kv_len (> 0 required for attention).
//                 conv (short conv on): (W-1) * 3 D
#include "sim/core/config.h"
#include "sim/io/run_record.h"

namespace statex {
StateSize compute_state_size(const ModelConfig& cfg, int kv_len = 0);
}  // namespace statex
