#pragma once
// AdamW over the model's flat buffers: moments live in backend memory with the parameter
// layout; weight decay applies to 2-D (matrix) tensors only unless decay_all. Each tensor keeps
// its own step count for bias correction (as PyTorch does), so tensors created by StateX start
// their correction afresh while the others continue.
#include <cstdint>
#include <vector>

#include "sim/core/backend.h"
#include "sim/core/config.h"
#include "sim/core/params.h"
#include "sim/model/arena.h"

namespace statex {

class AdamW {
 public:
  AdamW(Backend& be, const ParamTable& table, const TrainConfig& cfg);

  // One update with learning rate lr; grad_scale multiplies the gradients (clipping).
  void step(float* params, const float* grads, float lr, float grad_scale);

  float* exp_avg() { return m_; }
  float* exp_avg_sq() { return v_; }
  std::vector<int64_t>& tensor_steps() { return steps_; }
  const ParamTable& table() const { return table_; }

 private:
  Backend& be_;
  ParamTable table_;
  TrainConfig cfg_;
  Arena arena_;
  float* m_ = nullptr;
  float* v_ = nullptr;
  std::vector<int64_t> steps_;  // per tensor, in table order
};

}  // namespace statex
