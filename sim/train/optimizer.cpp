#include "sim/train/optimizer.h"

#include <algorithm>
#include <stdexcept>

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

AdamWState AdamW::state() const {
  AdamWState s;
  s.exp_avg.resize(table_.total());
  s.exp_avg_sq.resize(table_.total());
  be_.to_host(s.exp_avg.data(), m_, s.exp_avg.size() * sizeof(float));
  be_.to_host(s.exp_avg_sq.data(), v_, s.exp_avg_sq.size() * sizeof(float));
  s.tensor_steps = steps_;
  return s;
}

void AdamW::load(const AdamWState& s) {
  if (int64_t(s.exp_avg.size()) != table_.total() ||
      int64_t(s.exp_avg_sq.size()) != table_.total() || s.tensor_steps.size() != steps_.size())
    throw std::invalid_argument("AdamW state does not match the model's parameter table");
  be_.to_device(m_, s.exp_avg.data(), s.exp_avg.size() * sizeof(float));
  be_.to_device(v_, s.exp_avg_sq.data(), s.exp_avg_sq.size() * sizeof(float));
  steps_ = s.tensor_steps;
}

void AdamW::reset() {
  be_.zero(m_, table_.total() * sizeof(float));
  be_.zero(v_, table_.total() * sizeof(float));
  std::fill(steps_.begin(), steps_.end(), 0);
}

void AdamW::carry_over(const AdamWState& old, const ParamTable& old_table,
                       const std::vector<bool>& fresh, bool reset_all) {
  AdamWState s;
  s.exp_avg.assign(table_.total(), 0.f);
  s.exp_avg_sq.assign(table_.total(), 0.f);
  s.tensor_steps.assign(steps_.size(), 0);
  const auto& entries = table_.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (fresh.at(i) || reset_all) continue;
    const ParamEntry& o = old_table.at(entries[i].name);
    std::copy_n(old.exp_avg.begin() + o.offset, o.numel(), s.exp_avg.begin() + entries[i].offset);
    std::copy_n(old.exp_avg_sq.begin() + o.offset, o.numel(),
                s.exp_avg_sq.begin() + entries[i].offset);
    s.tensor_steps[i] = old.tensor_steps.at(size_t(&o - old_table.entries().data()));
  }
  load(s);
}

}  // namespace statex
