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

// AdamW's state on the host: what a checkpoint stores and an expansion carries over.
struct AdamWState {
  std::vector<float> exp_avg, exp_avg_sq;  // [table.total()], the parameter layout
  std::vector<int64_t> tensor_steps;       // per tensor, in table order
};

class AdamW {
 public:
  AdamW(Backend& be, const ParamTable& table, const TrainConfig& cfg);

  // One update with learning rate lr; grad_scale multiplies the gradients (clipping).
  void step(float* params, const float* grads, float lr, float grad_scale);

  AdamWState state() const;
  // Throws std::invalid_argument when the sizes do not match this optimizer's table.
  void load(const AdamWState& s);
  // Moments and step counts back to zero (statex.reset_optimizer on the control arm).
  void reset();
  // After a StateX expansion (this optimizer is for the new table): the tensors carried over
  // keep `old`'s moments and step counts, matched by name; new or reshaped tensors
  // (fresh[i], per entry of the new table) and, with reset_all, every tensor start at zero.
  void carry_over(const AdamWState& old, const ParamTable& old_table,
                  const std::vector<bool>& fresh, bool reset_all);

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
