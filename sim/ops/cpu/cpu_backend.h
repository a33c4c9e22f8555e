#pragma once
// CPU reference backend: Eigen + OpenMP. Each op's body lives in sim/ops/cpu/<op>.cpp.
// Threading: OpenMP over independent rows / (batch, head) pairs; results do not depend on the
// thread count except where a reduction over rows is split across threads (documented per op).
#include "sim/core/backend.h"

namespace statex {

// Not final: tests derive from it to inject a known error and check that comparisons catch it.
class CpuBackend : public Backend {
 public:
  std::string name() const override;
  void* malloc_bytes(size_t bytes) override;
  void free_bytes(void* p) override;
  void zero(void* p, size_t bytes) override;
  void to_device(void* dst, const void* host_src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
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
};

}  // namespace statex
