#include "sim/train/train_step.h"

#include <cmath>
#include <limits>

namespace statex {

StepResult train_step(Model& model, AdamW& adam, const DeviceBatch& batch, float lr,
                      double grad_clip) {
  StepResult r;
  r.grad_norm = std::numeric_limits<double>::quiet_NaN();
  model.zero_grads();
  r.loss = model.forward(batch);
  if (!std::isfinite(r.loss)) return r;
  model.backward(batch);
  r.grad_norm = std::sqrt(model.backend().sum_squares(model.grads(), model.n_params()));
  if (!std::isfinite(r.grad_norm)) return r;
  const float scale =
      (grad_clip > 0 && r.grad_norm > grad_clip) ? float(grad_clip / r.grad_norm) : 1.0f;
  adam.step(model.params(), model.grads(), lr, scale);
  r.updated = true;
  return r;
}

}  // namespace statex
