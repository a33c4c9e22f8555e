#pragma once
// A Backend that times every op of another backend: per op name (linear ops also per shape
// N x C -> OC), the calls and the wall time, synchronising the wrapped backend after each op so
// that device time is attributed to the op that queued it. `statex bench --profile` prints its
// table. It derives from Backend itself (not from one implementation), so an op added to the
// interface fails to compile here until it is timed too.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "sim/core/backend.h"

namespace statex {

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

  void zero(void* p, size_t bytes) override;
  void strided_copy(float* dst, int dst_ld, const float* src, int src_ld, int rows, int cols,
                    bool accumulate) override;
  void gather_rows(float* out, const float* inp, const int* idx, int M, int C) override;
  void scatter_add_rows(float* dinp, const float* dout, const int* idx, int M, int C) override;
  void add_inplace(float* y, const float* x, size_t n) override;
  void scale_inplace(float* y, float a, size_t n) override;
  void silu_forward(float* out, const float* inp, size_t n) override;
  void silu_backward(float* dinp, const float* dout, const float* inp, size_t n,
                     bool accumulate) override;
  void logsigmoid_forward(float* out, const float* inp, float scale, size_t n) override;
  void logsigmoid_backward(float* dinp, const float* dout, const float* inp, float scale, size_t n,
                           bool accumulate) override;
  void embedding_forward(float* out, const int* tokens, const float* wte, int N, int D) override;
  void embedding_backward(float* dwte, const float* dout, const int* tokens, int N, int D) override;
  void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                       float eps) override;
  void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                        const float* weight, const float* rstd, int N, int C,
                        bool accumulate) override;
  void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override;
  void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC,
                       bool accumulate) override;
  void linear_stacked_forward(float* const* outs, const int* ocs, int parts, const float* inp,
                              const float* weight, int N, int C) override;
  void linear_stacked_backward(float* dinp, float* dweight, const float* const* douts,
                               const int* ocs, int parts, const float* inp, const float* weight,
                               int N, int C, bool accumulate) override;
  void swiglu_forward(float* out, const float* gate, const float* up, size_t n) override;
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                       const float* up, size_t n, bool accumulate) override;
  void conv1d_forward(float* out, const float* inp, const float* weight, const float* bias, int B,
                      int T, int C, int W) override;
  void conv1d_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int B, int T, int C, int W,
                       bool accumulate) override;
  void conv1d_silu_forward(float* act, const float* inp, const float* weight, const float* bias,
                           int B, int T, int C, int W) override;
  void conv1d_silu_backward(float* dinp, float* dweight, float* dbias, const float* dact,
                            const float* inp, const float* weight, const float* bias, int B, int T,
                            int C, int W, bool accumulate) override;
  void gla_forward(float* o, float* final_state, const float* q, const float* k, const float* v,
                   const float* gk, int B, int T, int H, int K, int V, float scale,
                   int chunk) override;
  void gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                    const float* dfinal_state, const float* q, const float* k, const float* v,
                    const float* gk, int B, int T, int H, int K, int V, float scale, int chunk,
                    bool accumulate) override;
  void rmsnorm_swish_gate_forward(float* out, float* rstd, const float* x, const float* g,
                                  const float* weight, int N, int C, float eps) override;
  void rmsnorm_swish_gate_backward(float* dx, float* dg, float* dweight, const float* dout,
                                   const float* x, const float* g, const float* weight,
                                   const float* rstd, int N, int C, bool accumulate) override;
  void softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias, int N,
                             int H) override;
  void softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                              const float* dt_raw, const float* dt_bias, int N, int H,
                              bool accumulate) override;
  void ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                   const float* A_log, const float* Bm, const float* Cm, int B, int T, int H, int P,
                   int G, int N, int chunk) override;
  void ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm, const float* dy,
                    const float* dfinal_state, const float* x, const float* dt, const float* A_log,
                    const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N,
                    int chunk, bool accumulate) override;
  void ssd_dskip_forward(float* y, const float* x, const float* D, int N, int H, int P) override;
  void ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x, const float* D,
                          int N, int H, int P, bool accumulate) override;
  void gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z,
                             const float* weight, int N, int C, int group_size, float eps) override;
  void gated_rmsnorm_backward(float* dy, float* dz, float* dweight, const float* dout,
                              const float* y, const float* z, const float* weight,
                              const float* rstd, int N, int C, int group_size,
                              bool accumulate) override;
  // ---- softmax attention (issue 18) ----
  void attention_forward(float* o, float* lse, const float* q, const float* k, const float* v,
                         int B, int T, int H, int Dh, float scale) override;
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                          const float* k, const float* v, const float* o, const float* lse, int B,
                          int T, int H, int Dh, float scale, bool accumulate) override;
  void rope_forward(float* out, const float* inp, int B, int T, int H, int Dh,
                    float theta) override;
  void rope_backward(float* dinp, const float* dout, int B, int T, int H, int Dh, float theta,
                     bool accumulate) override;
  // ---- end softmax attention ----
  void softmax_xent_forward(float* losses, float* probs, int* pred, const float* logits,
                            const int* targets, int M, int V) override;
  void softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                             float dloss_scale, int M, int V, bool accumulate) override;
  double sum_squares(const float* x, size_t n) override;
  void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int step,
                    float grad_scale) override;

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
  static std::string shape_key(const char* op, int N, int C, int OC);

  Backend& inner_;
  std::map<std::string, Row> stats_;
};

}  // namespace statex
