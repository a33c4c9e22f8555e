// GLA token mixer, semantics of fla's GatedLinearAttention (DESIGN.md §1):
//   q,k [N,Dk], v,g [N,Dv] = projections of the normed input h [N,D]
//   (use_short_conv: q,k,v = silu(causal_conv(q,k,v)))
//   gk [N,Dk] = logsigmoid(gk_proj.1(gk_proj.0(h))) / gate_logit_normalizer
//   o [N,Dv]  = chunked GLA(q, k, v, gk) with scale K^-0.5, per head (K = Dk/H, Vh = Dv/H)
//   y [N,D]   = o_proj(rmsnorm_per_head(o) * g_norm.weight * swish(g))
#include <cmath>
#include <vector>

#include "sim/model/arena.h"
#include "sim/model/gla_mixer.h"

namespace statex {

namespace {

class GlaMixer final : public Mixer {
 public:
  GlaMixer(const ModelConfig& c, int layer, Backend& be, const MixerBinding& bind, int max_tokens,
           int chunk)
      : be_(be), b_(bind), arena_(be), chunk_(chunk) {
    D_ = c.d_model;
    Dk_ = c.key_dim();
    Dv_ = c.value_dim();
    H_ = c.layer_shape(layer).heads;
    r_ = c.gate_low_rank;
    W_ = c.conv_width;
    conv_ = c.use_short_conv;
    eps_ = c.norm_eps;
    gate_scale_ = 1.0f / c.gate_logit_normalizer;
    size_t n = max_tokens;
    // Activations of the last forward, and their gradients.
    for (ActGrad* b : {&q_lin_, &k_lin_, &gk_raw_, &gk_}) b->alloc(arena_, n, Dk_);
    for (ActGrad* b : {&v_lin_, &g_, &o_, &o_n_}) b->alloc(arena_, n, Dv_);
    gk_low_.alloc(arena_, n, r_);
    o_rstd_.alloc(arena_, n, H_);
    if (conv_) {
      for (ActGrad* b : {&q_cv_, &k_cv_, &q_, &k_}) b->alloc(arena_, n, Dk_);
      for (ActGrad* b : {&v_cv_, &v_}) b->alloc(arena_, n, Dv_);
    }
  }

  // Post-activation q/k/v (the conv output when the short conv is on, else the projection).
  float* q() { return conv_ ? q_.x : q_lin_.x; }
  float* k() { return conv_ ? k_.x : k_lin_.x; }
  float* v() { return conv_ ? v_.x : v_lin_.x; }
  float* dq() { return conv_ ? q_.d : q_lin_.d; }
  float* dk() { return conv_ ? k_.d : k_lin_.d; }
  float* dv() { return conv_ ? v_.d : v_lin_.d; }

  void forward(float* out, const float* h, RunShape s) override {
    const int N = s.N(), K = Dk_ / H_, Vh = Dv_ / H_;
    h_ = h;
    be_.linear_forward(q_lin_.x, h, b_.p("q_proj.weight"), nullptr, N, D_, Dk_);
    be_.linear_forward(k_lin_.x, h, b_.p("k_proj.weight"), nullptr, N, D_, Dk_);
    be_.linear_forward(v_lin_.x, h, b_.p("v_proj.weight"), nullptr, N, D_, Dv_);
    be_.linear_forward(g_.x, h, b_.p("g_proj.weight"), nullptr, N, D_, Dv_);
    if (conv_) {
      short_conv_forward(q_.x, q_cv_.x, q_lin_.x, "q_conv1d.weight", Dk_, s);
      short_conv_forward(k_.x, k_cv_.x, k_lin_.x, "k_conv1d.weight", Dk_, s);
      short_conv_forward(v_.x, v_cv_.x, v_lin_.x, "v_conv1d.weight", Dv_, s);
    }
    be_.linear_forward(gk_low_.x, h, b_.p("gk_proj.0.weight"), nullptr, N, D_, r_);
    be_.linear_forward(gk_raw_.x, gk_low_.x, b_.p("gk_proj.1.weight"), b_.p("gk_proj.1.bias"), N,
                       r_, Dk_);
    be_.logsigmoid_forward(gk_.x, gk_raw_.x, gate_scale_, size_t(N) * Dk_);
    be_.gla_forward(o_.x, nullptr, q(), k(), v(), gk_.x, s.B, s.T, H_, K, Vh,
                    1.0f / std::sqrt(float(K)), chunk_);
    be_.rmsnorm_swish_gate_forward(o_n_.x, o_rstd_.x, o_.x, g_.x, b_.p("g_norm.weight"), N * H_,
                                   Vh, eps_);
    be_.linear_forward(out, o_n_.x, b_.p("o_proj.weight"), nullptr, N, Dv_, D_);
  }

  void backward(float* dh, const float* dout, RunShape s) override {
    const int N = s.N(), K = Dk_ / H_, Vh = Dv_ / H_;
    // Every activation gradient has one writer here, which overwrites it (accumulate = false):
    // no zeroing pass. dh has five writers: the first overwrites, the others add.
    be_.linear_backward(o_n_.d, b_.g("o_proj.weight"), nullptr, dout, o_n_.x, b_.p("o_proj.weight"),
                        N, Dv_, D_, false);
    be_.rmsnorm_swish_gate_backward(o_.d, g_.d, b_.g("g_norm.weight"), o_n_.d, o_.x, g_.x,
                                    b_.p("g_norm.weight"), o_rstd_.x, N * H_, Vh, false);
    be_.gla_backward(dq(), dk(), dv(), gk_.d, o_.d, nullptr, q(), k(), v(), gk_.x, s.B, s.T, H_, K,
                     Vh, 1.0f / std::sqrt(float(K)), chunk_, false);
    be_.logsigmoid_backward(gk_raw_.d, gk_.d, gk_raw_.x, gate_scale_, size_t(N) * Dk_, false);
    be_.linear_backward(gk_low_.d, b_.g("gk_proj.1.weight"), b_.g("gk_proj.1.bias"), gk_raw_.d,
                        gk_low_.x, b_.p("gk_proj.1.weight"), N, r_, Dk_, false);
    be_.linear_backward(dh, b_.g("gk_proj.0.weight"), nullptr, gk_low_.d, h_,
                        b_.p("gk_proj.0.weight"), N, D_, r_, false);
    if (conv_) {
      short_conv_backward(q_lin_.d, q_cv_.d, q_.d, q_cv_.x, q_lin_.x, "q_conv1d.weight", Dk_, s);
      short_conv_backward(k_lin_.d, k_cv_.d, k_.d, k_cv_.x, k_lin_.x, "k_conv1d.weight", Dk_, s);
      short_conv_backward(v_lin_.d, v_cv_.d, v_.d, v_cv_.x, v_lin_.x, "v_conv1d.weight", Dv_, s);
    }
    be_.linear_backward(dh, b_.g("q_proj.weight"), nullptr, q_lin_.d, h_, b_.p("q_proj.weight"), N,
                        D_, Dk_, true);
    be_.linear_backward(dh, b_.g("k_proj.weight"), nullptr, k_lin_.d, h_, b_.p("k_proj.weight"), N,
                        D_, Dk_, true);
    be_.linear_backward(dh, b_.g("v_proj.weight"), nullptr, v_lin_.d, h_, b_.p("v_proj.weight"), N,
                        D_, Dv_, true);
    be_.linear_backward(dh, b_.g("g_proj.weight"), nullptr, g_.d, h_, b_.p("g_proj.weight"), N, D_,
                        Dv_, true);
  }

  double flops_per_token(int T) const override {
    // Projections (2 flops per MAC): q,k,v,g,o + low-rank gate; recurrence per token per head:
    // state update (2 K Vh) and readout (2 K Vh) = 4 Dk Dv / H.
    double proj = 2.0 * D_ * (2 * Dk_ + 3 * Dv_) + 2.0 * r_ * (D_ + Dk_);
    double scan = 4.0 * Dk_ * Dv_ / H_;
    double conv = conv_ ? 2.0 * W_ * (2 * Dk_ + Dv_) : 0.0;
    return proj + scan + conv;
  }

 private:
  void short_conv_forward(float* act, float* pre, const float* in, const char* w, int C,
                          RunShape s) {
    be_.conv1d_forward(pre, in, b_.p(w), nullptr, s.B, s.T, C, W_);
    be_.silu_forward(act, pre, size_t(s.N()) * C);
  }
  void short_conv_backward(float* din, float* dpre, const float* dact, const float* pre,
                           const float* in, const char* w, int C, RunShape s) {
    be_.silu_backward(dpre, dact, pre, size_t(s.N()) * C, false);
    be_.conv1d_backward(din, b_.g(w), nullptr, dpre, in, b_.p(w), s.B, s.T, C, W_, false);
  }

  Backend& be_;
  MixerBinding b_;
  Arena arena_;
  int chunk_;
  int D_, Dk_, Dv_, H_, r_, W_;
  bool conv_;
  float eps_, gate_scale_;
  const float* h_ = nullptr;  // input of the last forward
  ActGrad q_lin_, k_lin_, v_lin_, g_, gk_low_, gk_raw_, gk_, o_, o_rstd_, o_n_;
  ActGrad q_cv_, k_cv_, v_cv_, q_, k_, v_;
};

}  // namespace

std::unique_ptr<Mixer> make_gla_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                      const MixerBinding& bind, int max_tokens, int chunk) {
  return std::make_unique<GlaMixer>(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
