#include "sim/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace statex {

double Schedule::lr(int64_t step) const {
  const int64_t s = step - start;  // 1-based position inside the window
  if (warmup > 0 && s <= warmup) return peak_lr * double(s) / double(warmup);
  const int64_t decay = std::max<int64_t>(1, length - warmup);
  const double progress = std::clamp(double(s - warmup) / double(decay), 0.0, 1.0);
  const double floor = peak_lr * min_lr_ratio;
  return floor + (peak_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace statex
