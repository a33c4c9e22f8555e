#include "sim/train/progress.h"

#include <cstdio>

namespace statex {

std::string format_duration(double s) {
  char buf[32];
  long t = long(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

Progress::Progress(int64_t total_steps, bool quiet, double every_s)
    : total_(total_steps), quiet_(quiet), every_s_(every_s), start_(Clock::now()),
      last_print_(Clock::now()) {}

void Progress::step(int64_t step, float loss, float lr, double tps) {
  if (start_step_ < 0) {
    start_step_ = step - 1;
    start_ = Clock::now();
  }
  ema_tps_ = ema_tps_ == 0 ? tps : 0.9 * ema_tps_ + 0.1 * tps;
  auto now = Clock::now();
  if (quiet_ || (std::chrono::duration<double>(now - last_print_).count() < every_s_ &&
                 step != total_))
    return;
  last_print_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double per_step = elapsed / double(std::max<int64_t>(1, step - start_step_));
  double eta = per_step * double(total_ - step);
  char acc[16] = "-";
  if (last_acc_ >= 0) std::snprintf(acc, sizeof acc, "%.3f", last_acc_);
  std::fprintf(stderr, "step %6lld/%lld | loss %.4f | test acc %s | lr %.2e | %.1fk tok/s | ETA %s\n",
               (long long)step, (long long)total_, loss, acc, lr, ema_tps_ / 1000.0,
               format_duration(eta).c_str());
}

void Progress::eval(int64_t step, const EvalPoint& e) {
  last_acc_ = e.accuracy;
  if (quiet_) return;
  std::fprintf(stderr, "eval @ step %lld: accuracy %.4f, loss %.4f\n", (long long)step, e.accuracy,
               e.loss);
}

void Progress::valid(int64_t step, const EvalPoint& e) {
  if (quiet_) return;
  std::fprintf(stderr, "valid @ step %lld: accuracy %.4f, loss %.4f\n", (long long)step,
               e.accuracy, e.loss);
}

void Progress::note(const std::string& text) {
  if (!quiet_) std::fprintf(stderr, "%s\n", text.c_str());
}

void Progress::done(int64_t step, float accuracy, double wall_s) {
  if (quiet_) return;
  std::fprintf(stderr, "done: %lld steps, test accuracy %.4f, wall time %s\n", (long long)step,
               accuracy, format_duration(wall_s).c_str());
}

}  // namespace statex
