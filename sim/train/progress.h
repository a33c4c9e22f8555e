#pragma once
// Progress lines on stderr: step, loss, accuracy, lr, tokens/s and ETA, at most every few
// seconds, plus one line per evaluation.
#include <chrono>
#include <cstdint>
#include <string>

#include "sim/io/run_record.h"

namespace statex {

class Progress {
 public:
  Progress(int64_t total_steps, bool quiet, double every_s);
  void step(int64_t step, float loss, float lr, double tokens_per_s);
  void eval(int64_t step, const EvalPoint& e);
  void valid(int64_t step, const EvalPoint& e);  // the validation split's eval at the same step
  void note(const std::string& text);
  void done(int64_t step, float accuracy, double wall_s);

 private:
  using Clock = std::chrono::steady_clock;
  int64_t total_;
  bool quiet_;
  double every_s_;
  Clock::time_point start_, last_print_;
  int64_t start_step_ = -1;
  float last_acc_ = -1;
  double ema_tps_ = 0;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace statex
