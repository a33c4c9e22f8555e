// Per-op timing wrapper around a Backend (see the header). Each op forwards to the wrapped backend
// inside a Timer.
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

std::string OpTimingBackend::shape_key(const char* op, int N, int C, int OC) {
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

void OpTimingBackend::zero(void* p, size_t bytes) {
  Timer t(*this, "zero");
  inner_.zero(p, bytes);
}
void OpTimingBackend::strided_copy(float* dst, int dst_ld, const float* src, int src_ld, int rows,
                                   int cols, bool accumulate) {
  Timer t(*this, "strided_copy");
  inner_.strided_copy(dst, dst_ld, src, src_ld, rows, cols, accumulate);
}
void OpTimingBackend::gather_rows(float* out, const float* inp, const int* idx, int M, int C) {
  Timer t(*this, "gather_rows");
  inner_.gather_rows(out, inp, idx, M, C);
}
void OpTimingBackend::scatter_add_rows(float* dinp, const float* dout, const int* idx, int M,
                                       int C) {
  Timer t(*this, "scatter_add_rows");
  inner_.scatter_add_rows(dinp, dout, idx, M, C);
}
void OpTimingBackend::add_inplace(float* y, const float* x, size_t n) {
  Timer t(*this, "add_inplace");
  inner_.add_inplace(y, x, n);
}
void OpTimingBackend::scale_inplace(float* y, float a, size_t n) {
  Timer t(*this, "scale_inplace");
  inner_.scale_inplace(y, a, n);
}
void OpTimingBackend::silu_forward(float* out, const float* inp, size_t n) {
  Timer t(*this, "silu_forward");
  inner_.silu_forward(out, inp, n);
}
void OpTimingBackend::silu_backward(float* dinp, const float* dout, const float* inp, size_t n,
                                    bool accumulate) {
  Timer t(*this, "silu_backward");
  inner_.silu_backward(dinp, dout, inp, n, accumulate);
}
void OpTimingBackend::logsigmoid_forward(float* out, const float* inp, float scale, size_t n) {
  Timer t(*this, "logsigmoid_forward");
  inner_.logsigmoid_forward(out, inp, scale, n);
}
void OpTimingBackend::logsigmoid_backward(float* dinp, const float* dout, const float* inp,
                                          float scale, size_t n, bool accumulate) {
  Timer t(*this, "logsigmoid_backward");
  inner_.logsigmoid_backward(dinp, dout, inp, scale, n, accumulate);
}
void OpTimingBackend::embedding_forward(float* out, const int* tokens, const float* wte, int N,
                                        int D) {
  Timer t(*this, "embedding_forward");
  inner_.embedding_forward(out, tokens, wte, N, D);
}
void OpTimingBackend::embedding_backward(float* dwte, const float* dout, const int* tokens, int N,
                                         int D) {
  Timer t(*this, "embedding_backward");
  inner_.embedding_backward(dwte, dout, tokens, N, D);
}
void OpTimingBackend::rmsnorm_forward(float* out, float* rstd, const float* inp,
                                      const float* weight, int N, int C, float eps) {
  Timer t(*this, "rmsnorm_forward");
  inner_.rmsnorm_forward(out, rstd, inp, weight, N, C, eps);
}
void OpTimingBackend::rmsnorm_backward(float* dinp, float* dweight, const float* dout,
                                       const float* inp, const float* weight, const float* rstd,
                                       int N, int C, bool accumulate) {
  Timer t(*this, "rmsnorm_backward");
  inner_.rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, accumulate);
}
void OpTimingBackend::linear_forward(float* out, const float* inp, const float* weight,
                                     const float* bias, int N, int C, int OC) {
  Timer t(*this, shape_key("linear_forward", N, C, OC));
  inner_.linear_forward(out, inp, weight, bias, N, C, OC);
}
void OpTimingBackend::linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                      const float* inp, const float* weight, int N, int C, int OC,
                                      bool accumulate) {
  Timer t(*this, shape_key("linear_backward", N, C, OC));
  inner_.linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, accumulate);
}
void OpTimingBackend::linear_stacked_forward(float* const* outs, const int* ocs, int parts,
                                             const float* inp, const float* weight, int N, int C) {
  Timer t(*this, shape_key("linear_stacked_forward", N, C, stacked_width(ocs, parts)));
  inner_.linear_stacked_forward(outs, ocs, parts, inp, weight, N, C);
}
void OpTimingBackend::linear_stacked_backward(float* dinp, float* dweight,
                                              const float* const* douts, const int* ocs,
                                              int parts, const float* inp, const float* weight,
                                              int N, int C, bool accumulate) {
  Timer t(*this, shape_key("linear_stacked_backward", N, C, stacked_width(ocs, parts)));
  inner_.linear_stacked_backward(dinp, dweight, douts, ocs, parts, inp, weight, N, C,
                                 accumulate);
}
void OpTimingBackend::swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  Timer t(*this, "swiglu_forward");
  inner_.swiglu_forward(out, gate, up, n);
}
void OpTimingBackend::swiglu_backward(float* dgate, float* dup, const float* dout,
                                      const float* gate, const float* up, size_t n,
                                      bool accumulate) {
  Timer t(*this, "swiglu_backward");
  inner_.swiglu_backward(dgate, dup, dout, gate, up, n, accumulate);
}
void OpTimingBackend::conv1d_forward(float* out, const float* inp, const float* weight,
                                     const float* bias, int B, int T, int C, int W) {
  Timer t(*this, "conv1d_forward");
  inner_.conv1d_forward(out, inp, weight, bias, B, T, C, W);
}
void OpTimingBackend::conv1d_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                      const float* inp, const float* weight, int B, int T, int C,
                                      int W, bool accumulate) {
  Timer t(*this, "conv1d_backward");
  inner_.conv1d_backward(dinp, dweight, dbias, dout, inp, weight, B, T, C, W, accumulate);
}
void OpTimingBackend::conv1d_silu_forward(float* act, const float* inp, const float* weight,
                                          const float* bias, int B, int T, int C, int W) {
  Timer t(*this, "conv1d_silu_forward");
  inner_.conv1d_silu_forward(act, inp, weight, bias, B, T, C, W);
}
void OpTimingBackend::conv1d_silu_backward(float* dinp, float* dweight, float* dbias,
                                           const float* dact, const float* inp,
                                           const float* weight, const float* bias, int B, int T,
                                           int C, int W, bool accumulate) {
  Timer t(*this, "conv1d_silu_backward");
  inner_.conv1d_silu_backward(dinp, dweight, dbias, dact, inp, weight, bias, B, T, C, W,
                              accumulate);
}
void OpTimingBackend::gla_forward(float* o, float* final_state, const float* q, const float* k,
                                  const float* v, const float* gk, int B, int T, int H, int K,
                                  int V, float scale, int chunk) {
  Timer t(*this, "gla_forward");
  inner_.gla_forward(o, final_state, q, k, v, gk, B, T, H, K, V, scale, chunk);
}
void OpTimingBackend::gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                                   const float* dfinal_state, const float* q, const float* k,
                                   const float* v, const float* gk, int B, int T, int H, int K,
                                   int V, float scale, int chunk, bool accumulate) {
  Timer t(*this, "gla_backward");
  inner_.gla_backward(dq, dk, dv, dgk, dout, dfinal_state, q, k, v, gk, B, T, H, K, V, scale, chunk,
                      accumulate);
}
void OpTimingBackend::rmsnorm_swish_gate_forward(float* out, float* rstd, const float* x,
                                                 const float* g, const float* weight, int N, int C,
                                                 float eps) {
  Timer t(*this, "rmsnorm_swish_gate_forward");
  inner_.rmsnorm_swish_gate_forward(out, rstd, x, g, weight, N, C, eps);
}
void OpTimingBackend::rmsnorm_swish_gate_backward(float* dx, float* dg, float* dweight,
                                                  const float* dout, const float* x, const float* g,
                                                  const float* weight, const float* rstd, int N,
                                                  int C, bool accumulate) {
  Timer t(*this, "rmsnorm_swish_gate_backward");
  inner_.rmsnorm_swish_gate_backward(dx, dg, dweight, dout, x, g, weight, rstd, N, C, accumulate);
}
void OpTimingBackend::softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias,
                                            int N, int H) {
  Timer t(*this, "softplus_bias_forward");
  inner_.softplus_bias_forward(dt, dt_raw, dt_bias, N, H);
}
void OpTimingBackend::softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                                             const float* dt_raw, const float* dt_bias, int N,
                                             int H, bool accumulate) {
  Timer t(*this, "softplus_bias_backward");
  inner_.softplus_bias_backward(ddt_raw, ddt_bias, ddt, dt_raw, dt_bias, N, H, accumulate);
}
void OpTimingBackend::ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                                  const float* A_log, const float* Bm, const float* Cm, int B,
                                  int T, int H, int P, int G, int N, int chunk) {
  Timer t(*this, "ssd_forward");
  inner_.ssd_forward(y, final_state, x, dt, A_log, Bm, Cm, B, T, H, P, G, N, chunk);
}
void OpTimingBackend::ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm,
                                   const float* dy, const float* dfinal_state, const float* x,
                                   const float* dt, const float* A_log, const float* Bm,
                                   const float* Cm, int B, int T, int H, int P, int G, int N,
                                   int chunk, bool accumulate) {
  Timer t(*this, "ssd_backward");
  inner_.ssd_backward(dx, ddt, dA_log, dBm, dCm, dy, dfinal_state, x, dt, A_log, Bm, Cm, B, T, H, P,
                      G, N, chunk, accumulate);
}
void OpTimingBackend::ssd_dskip_forward(float* y, const float* x, const float* D, int N, int H,
                                        int P) {
  Timer t(*this, "ssd_dskip_forward");
  inner_.ssd_dskip_forward(y, x, D, N, H, P);
}
void OpTimingBackend::ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x,
                                         const float* D, int N, int H, int P, bool accumulate) {
  Timer t(*this, "ssd_dskip_backward");
  inner_.ssd_dskip_backward(dx, dD, dy, x, D, N, H, P, accumulate);
}
void OpTimingBackend::gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z,
                                            const float* weight, int N, int C, int group_size,
                                            float eps) {
  Timer t(*this, "gated_rmsnorm_forward");
  inner_.gated_rmsnorm_forward(out, rstd, y, z, weight, N, C, group_size, eps);
}
void OpTimingBackend::gated_rmsnorm_backward(float* dy, float* dz, float* dweight,
                                             const float* dout, const float* y, const float* z,
                                             const float* weight, const float* rstd, int N, int C,
                                             int group_size, bool accumulate) {
  Timer t(*this, "gated_rmsnorm_backward");
  inner_.gated_rmsnorm_backward(dy, dz, dweight, dout, y, z, weight, rstd, N, C, group_size,
                                accumulate);
}
// ---- softmax attention (issue 18) ----
void OpTimingBackend::attention_forward(float* o, float* lse, const float* q, const float* k,
                                        const float* v, int B, int T, int H, int Dh, float scale) {
  Timer t(*this, "attention_forward");
  inner_.attention_forward(o, lse, q, k, v, B, T, H, Dh, scale);
}
void OpTimingBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                         const float* q, const float* k, const float* v,
                                         const float* o, const float* lse, int B, int T, int H,
                                         int Dh, float scale, bool accumulate) {
  Timer t(*this, "attention_backward");
  inner_.attention_backward(dq, dk, dv, dout, q, k, v, o, lse, B, T, H, Dh, scale, accumulate);
}
void OpTimingBackend::rope_forward(float* out, const float* inp, int B, int T, int H, int Dh,
                                   float theta) {
  Timer t(*this, "rope_forward");
  inner_.rope_forward(out, inp, B, T, H, Dh, theta);
}
void OpTimingBackend::rope_backward(float* dinp, const float* dout, int B, int T, int H, int Dh,
                                    float theta, bool accumulate) {
  Timer t(*this, "rope_backward");
  inner_.rope_backward(dinp, dout, B, T, H, Dh, theta, accumulate);
}
// ---- end softmax attention ----
void OpTimingBackend::softmax_xent_forward(float* losses, float* probs, int* pred,
                                           const float* logits, const int* targets, int M, int V) {
  Timer t(*this, "softmax_xent_forward");
  inner_.softmax_xent_forward(losses, probs, pred, logits, targets, M, V);
}
void OpTimingBackend::softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                                            float dloss_scale, int M, int V, bool accumulate) {
  Timer t(*this, "softmax_xent_backward");
  inner_.softmax_xent_backward(dlogits, probs, targets, dloss_scale, M, V, accumulate);
}
double OpTimingBackend::sum_squares(const float* x, size_t n) {
  Timer t(*this, "sum_squares");
  return inner_.sum_squares(x, n);
}
void OpTimingBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                                   float lr, float beta1, float beta2, float eps,
                                   float weight_decay, int step, float grad_scale) {
  Timer t(*this, "adamw_update");
  inner_.adamw_update(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
}

}  // namespace statex
