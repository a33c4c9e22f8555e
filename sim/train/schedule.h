#pragma once
// Learning-rate schedule: linear warm-up then cosine decay to min_lr_ratio * lr, over a window
// of steps that starts at `start` (0 for a fresh run; the expansion step after StateX, where the
// schedule restarts with its own warm-up).
#include <cstdint>

namespace statex {

struct Schedule {
  double peak_lr = 3e-3;
  double min_lr_ratio = 0.0;
  int64_t start = 0;    // first step of this schedule window (steps are 1-based inside)
  int64_t length = 1;   // steps in the window
  int64_t warmup = 0;

  // lr used for global step `step` (1-based: the step-th optimizer update).
  double lr(int64_t step) const;
};

}  // namespace statex
