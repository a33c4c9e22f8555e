// Per-op timing wrapper around a Backend (see the header): the timer and the table.
#include "sim/core/op_timing_backend.h"

#include <algorithm>
#include <cstdio>

namespace statex {

OpTimingBackend::Timer::Timer(OpTimingBackend& be, std::string op)
    : be_(be), op_(std::move(op)), start_(std::chrono::steady_clock::now()) {}

OpTimingBackend::Timer::~Timer() {
  be_.inner_.synchronize();
  Row& r = be_.stats_[op_];
  r.op = op_;
  r.calls += 1;
  r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string op_shape_label(const char* op, int N, int C, int OC) {
  return std::string(op) + " " + std::to_string(N) + "x" + std::to_string(C) + "->" +
         std::to_string(OC);
}

std::vector<OpTimingBackend::Row> OpTimingBackend::rows() const {
  std::vector<Row> out;
  for (const auto& kv : stats_) out.push_back(kv.second);
  std::sort(out.begin(), out.end(),
            [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
  return out;
}

std::string OpTimingBackend::table(int steps, double step_seconds) const {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "  %-36s %10s %9s %11s\n", "op", "ms/step", "of step",
                "calls/step");
  s += line;
  double total = 0;
  for (const Row& r : rows()) {
    const double per_step = r.seconds / steps;
    total += per_step;
    std::snprintf(line, sizeof line, "  %-36s %10.2f %8.1f%% %11.1f\n", r.op.c_str(),
                  per_step * 1e3, 100.0 * per_step / step_seconds, double(r.calls) / steps);
    s += line;
  }
  std::snprintf(line, sizeof line, "  %-36s %10.2f %8.1f%%\n", "(all ops)", total * 1e3,
                100.0 * total / step_seconds);
  s += line;
  return s;
}

}  // namespace statex
