#pragma once
// The op set. Every op the trainer uses is a virtual method here, implemented twice with the
// same signature: CpuBackend (sim/ops/cpu/*.cpp, Eigen + OpenMP, the reference) and
// CudaBackend (kernels/*.cu). The model and trainer are written once against this interface.
//
// Conventions (DESIGN.md §4):
//  - arguments: outputs first, then inputs, then sizes; gradients are named d<name>.
//  - all pointers are backend memory (host for CPU, device for CUDA), row-major, contiguous.
//  - *_backward ACCUMULATES (+=) into parameter gradients (dweight, dbias, dA_log, dD, dwte,
//    ...) always, like llm.c: shared weights then need no extra adds; the trainer zeroes them
//    once per step. Input (activation) gradients (dinp, dx, dq, ...) follow the op's last
//    argument `accumulate`: true adds into them, false OVERWRITES them without reading the old
//    contents (they may be uninitialised, even NaN). The first writer of an activation
//    gradient overwrites, so it needs no zeroing pass and no read of the old values; later
//    writers (residual streams, the D skip after the SSD) accumulate.
//    A gradient pointer may be nullptr, meaning "not needed" (the op skips it).
//  - forward ops OVERWRITE their outputs.
//  - shapes are given in comments as [dim, dim]; N is a row count (usually B*T).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace statex {

// Total output width of a stacked projection: sum of ocs[0..parts).
inline int stacked_width(const int* ocs, int parts) {
  int w = 0;
  for (int i = 0; i < parts; ++i) w += ocs[i];
  return w;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda"

  // ---------------- memory ----------------
  virtual void* malloc_bytes(size_t bytes) = 0;
  virtual void free_bytes(void* p) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void to_device(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void synchronize() {}

  // ---------------- data movement ----------------
  // dst[r, c] (+)= src[r, c] for r < rows, c < cols; ld = row stride in floats. Used to split
  // fused projections into contiguous q/k/v, and (accumulate=true) for the reverse in backward.
  virtual void strided_copy(float* dst, int dst_ld, const float* src, int src_ld, int rows,
                            int cols, bool accumulate) = 0;
  // out[i, :] = inp[idx[i], :]  out [M, C], inp [*, C], idx [M]
  virtual void gather_rows(float* out, const float* inp, const int* idx, int M, int C) = 0;
  // dinp[idx[i], :] += dout[i, :]   (idx entries are distinct)
  virtual void scatter_add_rows(float* dinp, const float* dout, const int* idx, int M, int C) = 0;

  // ---------------- elementwise ----------------
  virtual void add_inplace(float* y, const float* x, size_t n) = 0;  // y += x
  virtual void scale_inplace(float* y, float a, size_t n) = 0;       // y *= a
  // out = silu(inp) = inp * sigmoid(inp)
  virtual void silu_forward(float* out, const float* inp, size_t n) = 0;
  virtual void silu_backward(float* dinp, const float* dout, const float* inp, size_t n,
                             bool accumulate) = 0;
  // out = scale * logsigmoid(inp)   (GLA forget gate, scale = 1/gate_logit_normalizer)
  virtual void logsigmoid_forward(float* out, const float* inp, float scale, size_t n) = 0;
  virtual void logsigmoid_backward(float* dinp, const float* dout, const float* inp, float scale,
                                   size_t n, bool accumulate) = 0;

  // ---------------- embedding ----------------
  // out [N, D] = wte[tokens[i], :]; wte [V, D]
  virtual void embedding_forward(float* out, const int* tokens, const float* wte, int N,
                                 int D) = 0;
  virtual void embedding_backward(float* dwte, const float* dout, const int* tokens, int N,
                                  int D) = 0;

  // ---------------- RMSNorm ----------------
  // out [N, C] = inp * rstd * weight, rstd [N] = 1/sqrt(mean(inp^2) + eps), weight [C]
  virtual void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                               int N, int C, float eps) = 0;
  virtual void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                const float* weight, const float* rstd, int N, int C,
                                bool accumulate) = 0;

  // ---------------- linear ----------------
  // out [N, OC] = inp [N, C] · weight[OC, C]^T + bias [OC] (bias may be nullptr)
  virtual void linear_forward(float* out, const float* inp, const float* weight,
                              const float* bias, int N, int C, int OC) = 0;
  virtual void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, int N, int C, int OC,
                               bool accumulate) = 0;
  // Several bias-free projections of one input, weights stacked in one buffer: weight
  // [sum_i ocs[i], C] holds part i's [ocs[i], C] rows in order; outs[i] [N, ocs[i]]. Same
  // result as linear_forward per part (up to GEMM rounding); the CPU path makes one pass over
  // inp with one wide product instead of `parts` narrow ones.
  virtual void linear_stacked_forward(float* const* outs, const int* ocs, int parts,
                                      const float* inp, const float* weight, int N, int C) = 0;
  // dinp [N, C] (+)= sum_i douts[i] · weight_i (one product over the stacked depth on the CPU);
  // dweight [sum ocs, C]: part i's rows += douts[i]^T · inp.
  virtual void linear_stacked_backward(float* dinp, float* dweight, const float* const* douts,
                                       const int* ocs, int parts, const float* inp,
                                       const float* weight, int N, int C, bool accumulate) = 0;

  // ---------------- SwiGLU ----------------
  // out [n] = silu(gate) * up
  virtual void swiglu_forward(float* out, const float* gate, const float* up, size_t n) = 0;
  virtual void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                               const float* up, size_t n, bool accumulate) = 0;

  // ---------------- causal depthwise conv1d ----------------
  // out[b,t,c] = bias[c] + sum_{j<W} weight[c, j] * inp[b, t-(W-1)+j, c]  (zero padded left)
  // inp/out [B, T, C], weight [C, W] (PyTorch conv1d.weight [C,1,W]), bias [C] or nullptr.
  virtual void conv1d_forward(float* out, const float* inp, const float* weight, const float* bias,
                              int B, int T, int C, int W) = 0;
  virtual void conv1d_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, int B, int T, int C, int W,
                               bool accumulate) = 0;
  // The same conv followed by SiLU (GLA's q/k/v short convs, Mamba2's xBC conv):
  // act [B, T, C] = silu(conv1d(inp)). The conv output is not stored; the backward recomputes it
  // from inp (W multiply-adds per element) and needs bias for that.
  virtual void conv1d_silu_forward(float* act, const float* inp, const float* weight,
                                   const float* bias, int B, int T, int C, int W) = 0;
  virtual void conv1d_silu_backward(float* dinp, float* dweight, float* dbias, const float* dact,
                                    const float* inp, const float* weight, const float* bias,
                                    int B, int T, int C, int W, bool accumulate) = 0;

  // ---------------- GLA (chunked fast path) ----------------
  // Per (b, h): S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t, o_t = (scale q_t) S_t, S_0 = 0.
  // q, k, gk [B, T, H, K]; v, o [B, T, H, V]; gk is log-space decay (<= 0).
  // final_state [B, H, K, V] or nullptr. chunk: chunk length (any T allowed, last chunk partial).
  virtual void gla_forward(float* o, float* final_state, const float* q, const float* k,
                           const float* v, const float* gk, int B, int T, int H, int K, int V,
                           float scale, int chunk) = 0;
  // dfinal_state [B, H, K, V] or nullptr (= zero upstream gradient on the final state).
  virtual void gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                            const float* dfinal_state, const float* q, const float* k,
                            const float* v, const float* gk, int B, int T, int H, int K, int V,
                            float scale, int chunk, bool accumulate) = 0;

  // GLA output norm (fla FusedRMSNormSwishGate): per row of C (= head dim Vh),
  // out = x * rstd * weight * g * sigmoid(g). x, g, out [N, C] with N = tokens*heads,
  // weight [C], rstd [N].
  virtual void rmsnorm_swish_gate_forward(float* out, float* rstd, const float* x, const float* g,
                                          const float* weight, int N, int C, float eps) = 0;
  virtual void rmsnorm_swish_gate_backward(float* dx, float* dg, float* dweight, const float* dout,
                                           const float* x, const float* g, const float* weight,
                                           const float* rstd, int N, int C, bool accumulate) = 0;

  // ---------------- Mamba2 ----------------
  // dt [N, H] = softplus(dt_raw + dt_bias[h])
  virtual void softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias, int N,
                                     int H) = 0;
  virtual void softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                                      const float* dt_raw, const float* dt_bias, int N, int H,
                                      bool accumulate) = 0;
  // SSD scan (chunked fast path), per (b, head h, group g = h / (H/G)), A_h = -exp(A_log[h]):
  //   h_t = exp(dt_t A_h) h_{t-1} + dt_t x_t ⊗ B_t   (state P×N),   y_t = h_t C_t
  // x, y [B, T, H, P]; dt [B, T, H] (already softplus'ed); Bm, Cm [B, T, G, N]; A_log [H].
  // final_state [B, H, P, N] or nullptr. The D skip is a separate op (ssd_dskip_*).
  virtual void ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                           const float* A_log, const float* Bm, const float* Cm, int B, int T,
                           int H, int P, int G, int N, int chunk) = 0;
  virtual void ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm,
                            const float* dy, const float* dfinal_state, const float* x,
                            const float* dt, const float* A_log, const float* Bm, const float* Cm,
                            int B, int T, int H, int P, int G, int N, int chunk,
                            bool accumulate) = 0;
  // y [N, H, P] += D[h] * x [N, H, P]
  virtual void ssd_dskip_forward(float* y, const float* x, const float* D, int N, int H,
                                 int P) = 0;
  virtual void ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x,
                                  const float* D, int N, int H, int P, bool accumulate) = 0;
  // Mamba2 gated norm (norm after gate, mamba_ssm RMSNormGated norm_before_gate=False):
  // u = y * silu(z); out = u * rstd_group * weight. y, z, out [N, C]; groups of group_size
  // consecutive channels; rstd [N, C/group_size]; weight [C].
  virtual void gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z,
                                     const float* weight, int N, int C, int group_size,
                                     float eps) = 0;
  virtual void gated_rmsnorm_backward(float* dy, float* dz, float* dweight, const float* dout,
                                      const float* y, const float* z, const float* weight,
                                      const float* rstd, int N, int C, int group_size,
                                      bool accumulate) = 0;

  // ---------------- softmax attention (issue 18) ----------------
  // Causal softmax attention per (b, h): o_t = sum_{s<=t} softmax_s(scale q_t·k_s) v_s.
  // q, k, v, o [B, T, H, Dh]; lse [B, H, T] = per-row log-sum-exp of the scaled scores, saved
  // for the backward. Blocked online softmax (flash-attention scheme): the T x T matrix is
  // never stored; the backward recomputes the probabilities from lse.
  virtual void attention_forward(float* o, float* lse, const float* q, const float* k,
                                 const float* v, int B, int T, int H, int Dh, float scale) = 0;
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                  const float* q, const float* k, const float* v, const float* o,
                                  const float* lse, int B, int T, int H, int Dh, float scale,
                                  bool accumulate) = 0;
  // Rotary position embedding (fla RotaryEmbedding, rotate-half form) on x [B, T, H, Dh], Dh
  // even, position t = 0..T-1, frequencies theta^(-2i/Dh). The backward is the inverse rotation.
  virtual void rope_forward(float* out, const float* inp, int B, int T, int H, int Dh,
                            float theta) = 0;
  virtual void rope_backward(float* dinp, const float* dout, int B, int T, int H, int Dh,
                             float theta, bool accumulate) = 0;

  // ---------------- loss ----------------
  // Softmax cross-entropy over rows of logits [M, V] with targets [M].
  // losses [M] = -log softmax(logits)[target]; probs [M, V] saved for backward;
  // pred [M] = argmax (ties: lowest index) for accuracy.
  virtual void softmax_xent_forward(float* losses, float* probs, int* pred, const float* logits,
                                    const int* targets, int M, int V) = 0;
  // dlogits [M, V] += (probs - onehot(target)) * dloss_scale  (dloss_scale = dL/dloss_i, same
  // for every row: 1/M for a mean).
  virtual void softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                                     float dloss_scale, int M, int V, bool accumulate) = 0;

  // ---------------- optimiser ----------------
  // Sum of squares (for global grad norm), accumulated in double.
  virtual double sum_squares(const float* x, size_t n) = 0;
  // AdamW (PyTorch semantics, decoupled decay): g = grad * grad_scale;
  // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (wd p + mhat / (sqrt(vhat) + eps)),
  // mhat = m / (1 - b1^step), vhat = v / (1 - b2^step); step counts from 1.
  virtual void adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                            float lr, float beta1, float beta2, float eps, float weight_decay,
                            int step, float grad_scale) = 0;
};

// The CPU reference backend (always available).
std::unique_ptr<Backend> make_cpu_backend();
// The CUDA backend; throws std::runtime_error when built without CUDA or no device is present.
std::unique_ptr<Backend> make_cuda_backend();
// True when this binary was built with CUDA and a device is visible.
bool cuda_available(std::string* why_not = nullptr);
std::unique_ptr<Backend> make_backend(const std::string& device);

}  // namespace statex
