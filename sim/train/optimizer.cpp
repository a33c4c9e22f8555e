#include "sim/train/optimizer.h"

namespace statex {

AdamW::AdamW(Backend& be, const ParamTable& table, const TrainConfig& cfg)
    : be_(be), table_(table), cfg_(cfg), arena_(be) {
  m_ = arena_.floats(table.total());
  v_ = arena_.floats(table.total());
  steps_.assign(table.entries().size(), 0);
}

void AdamW::step(float* params, const float* grads, float lr, float grad_scale) {
  const auto& entries = table_.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const ParamEntry& e = entries[i];
    const float wd = (cfg_.decay_all || e.is_matrix()) ? cfg_.weight_decay : 0.0f;
    const int64_t t = ++steps_[i];
    be_.adamw_update(params + e.offset, grads + e.offset, m_ + e.offset, v_ + e.offset,
                     size_t(e.numel()), lr, cfg_.beta1, cfg_.beta2, cfg_.adam_eps, wd, int(t),
                     grad_scale);
  }
}

}  // namespace statex
