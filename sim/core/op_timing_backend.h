#pragma once
// A Backend that times every op of another backend: per op name (linear ops also per shape
// N x C -> OC), the calls and the wall time, synchronising the wrapped backend after each op so
// that device time is attributed to the op that queued it. `statex bench --profile` prints its
// table. Its forwarders are stamped out from the op list (sim/core/ops.def), so every op is
// timed without a line here.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "sim/core/backend.h"
#include "sim/core/op_list.h"

namespace statex {

// The row label an op is timed under: its name; the linear ops also their shape N x C -> OC
// (the GEMMs whose speed depends on it).
std::string op_shape_label(const char* op, int N, int C, int OC);
template <OpId id>
struct OpTimingLabel {
  template <class... Args>
  static std::string of(const Args&...) {
    return op_info(id).name;
  }
};
template <>
struct OpTimingLabel<OpId::linear_forward> {
  static std::string of(float*, const float*, const float*, const float*, int N, int C, int OC) {
    return op_shape_label("linear_forward", N, C, OC);
  }
};
template <>
struct OpTimingLabel<OpId::linear_backward> {
  static std::string of(float*, float*, float*, const float*, const float*, const float*, int N,
                        int C, int OC, bool) {
    return op_shape_label("linear_backward", N, C, OC);
  }
};
template <>
struct OpTimingLabel<OpId::linear_stacked_forward> {
  static std::string of(float* const*, const int* ocs, int parts, const float*, const float*, int N,
                        int C) {
    return op_shape_label("linear_stacked_forward", N, C, stacked_width(ocs, parts));
  }
};
template <>
struct OpTimingLabel<OpId::linear_stacked_backward> {
  static std::string of(float*, float*, const float* const*, const int* ocs, int parts,
                        const float*, const float*, int N, int C, bool) {
    return op_shape_label("linear_stacked_backward", N, C, stacked_width(ocs, parts));
  }
};

class OpTimingBackend final : public Backend {
 public:
  struct Row {
    std::string op;
    long calls = 0;
    double seconds = 0;
  };

  explicit OpTimingBackend(Backend& inner) : inner_(inner) {}

  void reset() { stats_.clear(); }
  // Rows sorted by time, largest first.
  std::vector<Row> rows() const;
  // "op  ms/step  % of step  calls/step" lines for `steps` timed steps of `step_seconds` each.
  std::string table(int steps, double step_seconds) const;

  std::string name() const override { return inner_.name(); }
  void* malloc_bytes(size_t bytes) override { return inner_.malloc_bytes(bytes); }
  void free_bytes(void* p) override { inner_.free_bytes(p); }
  void to_device(void* dst, const void* host_src, size_t bytes) override {
    inner_.to_device(dst, host_src, bytes);
  }
  void to_host(void* host_dst, const void* src, size_t bytes) override {
    inner_.to_host(host_dst, src, bytes);
  }
  void synchronize() override { inner_.synchronize(); }

  // Every op of the op list: time it, forward it.
#define STATEX_OP(stem, name, ret, params, args)        \
  ret name params override {                            \
    Timer t(*this, OpTimingLabel<OpId::name>::of args); \
    return inner_.name args;                            \
  }
#include "sim/core/ops.def"

 private:
  // Times one op from construction to destruction (after synchronising the wrapped backend).
  class Timer {
   public:
    Timer(OpTimingBackend& be, std::string op);
    ~Timer();

   private:
    OpTimingBackend& be_;
    std::string op_;
    std::chrono::steady_clock::time_point start_;
  };

  Backend& inner_;
  std::map<std::string, Row> stats_;
};

}  // namespace statex
