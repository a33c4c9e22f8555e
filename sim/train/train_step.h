#pragma once
// One optimisation step, written once for the trainer, `statex bench` and `statex verify`'s
// model check: zero the gradients, forward, backward, global gradient norm, clip, AdamW.
#include "sim/model/model.h"
#include "sim/train/optimizer.h"

namespace statex {

struct StepResult {
  float loss = 0;        // mean cross-entropy over the batch's labelled positions (nats)
  double grad_norm = 0;  // global L2 norm of the gradients before clipping (NaN: not reached)
  // False when the loss or the gradient norm was not finite: the step stopped there and the
  // parameters are unchanged (the caller decides whether the run fails).
  bool updated = false;
};

// One step on `batch` with learning rate `lr`. grad_clip > 0 scales the gradients down to that
// global norm when it is exceeded (PyTorch clip_grad_norm_); <= 0 never clips.
StepResult train_step(Model& model, AdamW& adam, const DeviceBatch& batch, float lr,
                      double grad_clip);

}  // namespace statex
