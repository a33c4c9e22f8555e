// GLA token mixer, semantics of fla's GatedLinearAttention (DESIGN.md §1):
//   q,k [N,Dk], v,g [N,Dv] = projections of the normed input h [N,D]
//   (use_short_conv: q,k,v = silu(causal_conv(q,k,v)))
//   gk [N,Dk] = logsigmoid(gk_proj.1(gk_proj.0(h))) / gate_logit_normalizer
//   o [N,Dv]  = chunked GLA(q, k, v, gk) with scale K^-0.5, per head (K = Dk/H, Vh = Dv/H)
//   y [N,D]   = o_proj(rmsnorm_per_head(o) * g_norm.weight * swish(g))
#include <cmath>
#include <stdexcept>
#include <vector>

#include "sim/model/arena.h"
#include "sim/model/gla_mixer.h"

namespace statex {

namespace {

class GlaMixer final : public Mixer {
 public:
  GlaMixer(const ModelConfig& c, int layer, Backend& be, const MixerBinding& bind, int max_tokens,
           int chunk)
      : be_(be), b_(bind), arena_(be), chunk_(chunk), tail_(be, c.value_dim(), o_, g_) {
    D_ = c.d_model;
    Dk_ = c.key_dim();
    Dv_ = c.value_dim();
    H_ = c.layer_shape(layer).heads;
    r_ = c.gate_low_rank;
    W_ = c.conv_width;
    conv_ = c.use_short_conv;
    eps_ = c.norm_eps;
    gate_scale_ = 1.0f / c.gate_logit_normalizer;
    in_proj_oc_[0] = in_proj_oc_[1] = Dk_;
    in_proj_oc_[2] = in_proj_oc_[3] = Dv_;
    in_proj_oc_[4] = r_;
    check_stacked_in_proj();
    size_t n = max_tokens;
    // Activations of the last forward, and their gradients.
    for (ActGrad* b : {&q_lin_, &k_lin_, &gk_raw_, &gk_}) b->alloc(arena_, n, Dk_);
    for (ActGrad* b : {&v_lin_, &g_, &o_, &o_n_}) b->alloc(arena_, n, Dv_);
    gk_low_.alloc(arena_, n, r_);
    o_rstd_.alloc(arena_, n, H_);
    if (conv_) {
      for (ActGrad* b : {&q_, &k_}) b->alloc(arena_, n, Dk_);
      v_.alloc(arena_, n, Dv_);
    }
  }

  // Post-activation q/k/v (the conv output when the short conv is on, else the projection).
  float* q() { return conv_ ? q_.x : q_lin_.x; }
  float* k() { return conv_ ? k_.x : k_lin_.x; }
  float* v() { return conv_ ? v_.x : v_lin_.x; }
  float* dq() { return conv_ ? q_.d : q_lin_.d; }
  float* dk() { return conv_ ? k_.d : k_lin_.d; }
  float* dv() { return conv_ ? v_.d : v_lin_.d; }

  void forward(float* out, const float* h, RunShape s, const OutputRows& rows) override {
    const int N = s.N(), K = Dk_ / H_, Vh = Dv_ / H_;
    h_ = h;
    // q, k, v, g and the gate's low-rank input: five projections of h as one stacked op.
    float* proj_out[kInProj] = {q_lin_.x, k_lin_.x, v_lin_.x, g_.x, gk_low_.x};
    be_.linear_stacked_forward(proj_out, in_proj_oc_, kInProj, h, b_.p("q_proj.weight"), N, D_);
    if (conv_) {
      short_conv_forward(q_.x, q_lin_.x, "q_conv1d.weight", Dk_, s);
      short_conv_forward(k_.x, k_lin_.x, "k_conv1d.weight", Dk_, s);
      short_conv_forward(v_.x, v_lin_.x, "v_conv1d.weight", Dv_, s);
    }
    be_.linear_forward(gk_raw_.x, gk_low_.x, b_.p("gk_proj.1.weight"), b_.p("gk_proj.1.bias"), N,
                       r_, Dk_);
    be_.logsigmoid_forward(gk_.x, gk_raw_.x, gate_scale_, size_t(N) * Dk_);
    be_.gla_forward(o_.x, nullptr, q(), k(), v(), gk_.x, s.B, s.T, H_, K, Vh,
                    1.0f / std::sqrt(float(K)), chunk_);
    // Output tail (norm, gate, o_proj) at the output rows only.
    const TailRows::Buffers t = tail_.inputs(rows, N);  // o, g
    be_.gla_norm_forward(o_n_.x, o_rstd_.x, t.a, t.b, b_.p("g_norm.weight"), t.rows * H_, Vh, eps_);
    be_.linear_forward(out, o_n_.x, b_.p("o_proj.weight"), nullptr, t.rows, Dv_, D_);
  }

  void backward(float* dh, const float* dout, RunShape s, const OutputRows& rows) override {
    const int N = s.N(), K = Dk_ / H_, Vh = Dv_ / H_;
    // Every activation gradient has one writer here, which overwrites it (accumulate = false):
    // no zeroing pass. dh has one writer, the stacked input projection.
    const TailRows::Buffers t = tail_.grads(rows, N);  // o, g and their gradients
    be_.linear_backward(o_n_.d, b_.g("o_proj.weight"), nullptr, dout, o_n_.x, b_.p("o_proj.weight"),
                        t.rows, Dv_, D_, false);
    be_.gla_norm_backward(t.da, t.db, b_.g("g_norm.weight"), o_n_.d, t.a, t.b,
                          b_.p("g_norm.weight"), o_rstd_.x, t.rows * H_, Vh, false);
    tail_.scatter_grads(rows, N);  // into o_.d, g_.d
    be_.gla_backward(dq(), dk(), dv(), gk_.d, o_.d, nullptr, q(), k(), v(), gk_.x, s.B, s.T, H_, K,
                     Vh, 1.0f / std::sqrt(float(K)), chunk_, false);
    be_.logsigmoid_backward(gk_raw_.d, gk_.d, gk_raw_.x, gate_scale_, size_t(N) * Dk_, false);
    be_.linear_backward(gk_low_.d, b_.g("gk_proj.1.weight"), b_.g("gk_proj.1.bias"), gk_raw_.d,
                        gk_low_.x, b_.p("gk_proj.1.weight"), N, r_, Dk_, false);
    if (conv_) {
      short_conv_backward(q_lin_.d, q_.d, q_lin_.x, "q_conv1d.weight", Dk_, s);
      short_conv_backward(k_lin_.d, k_.d, k_lin_.x, "k_conv1d.weight", Dk_, s);
      short_conv_backward(v_lin_.d, v_.d, v_lin_.x, "v_conv1d.weight", Dv_, s);
    }
    const float* proj_grad[kInProj] = {q_lin_.d, k_lin_.d, v_lin_.d, g_.d, gk_low_.d};
    be_.linear_stacked_backward(dh, b_.g("q_proj.weight"), proj_grad, in_proj_oc_, kInProj, h_,
                                b_.p("q_proj.weight"), N, D_, false);
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
  // act = silu(causal_conv(in)), fla's ShortConvolution (no bias).
  void short_conv_forward(float* act, const float* in, const char* w, int C, RunShape s) {
    be_.conv1d_silu_forward(act, in, b_.p(w), nullptr, s.B, s.T, C, W_);
  }
  void short_conv_backward(float* din, const float* dact, const float* in, const char* w, int C,
                           RunShape s) {
    be_.conv1d_silu_backward(din, b_.g(w), nullptr, dact, in, b_.p(w), nullptr, s.B, s.T, C, W_,
                             false);
  }

  // The stacked op needs the five input-projection weights adjacent, in this order, in the
  // flat parameter buffer (param_layout.cpp lays them out so; gradients share the layout).
  void check_stacked_in_proj() const {
    static const char* names[kInProj] = {"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                         "g_proj.weight", "gk_proj.0.weight"};
    const float* next = b_.p(names[0]);
    for (int i = 0; i < kInProj; ++i) {
      if (b_.p(names[i]) != next)
        throw std::logic_error("GLA mixer: input projection weights are not stacked in order");
      next += size_t(in_proj_oc_[i]) * D_;
    }
  }

  static constexpr int kInProj = 5;  // q, k, v, g, gk_proj.0
  Backend& be_;
  MixerBinding b_;
  Arena arena_;
  int chunk_;
  int D_, Dk_, Dv_, H_, r_, W_;
  int in_proj_oc_[kInProj];  // output widths of the stacked input projection
  bool conv_;
  float eps_, gate_scale_;
  const float* h_ = nullptr;  // input of the last forward
  ActGrad q_lin_, k_lin_, v_lin_, g_, gk_low_, gk_raw_, gk_, o_, o_rstd_, o_n_;
  ActGrad q_, k_, v_;  // post-conv q/k/v (short conv on)
  TailRows tail_;  // o and g at the output rows
};

}  // namespace

std::unique_ptr<Mixer> make_gla_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                      const MixerBinding& bind, int max_tokens, int chunk) {
  return std::make_unique<GlaMixer>(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
