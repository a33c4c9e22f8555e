// GLA token mixer, semantics of fla's GatedLinearAttention (docs/design.md §1):
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

// One layer's GLA tensors, bound once.
struct GlaParams {
  ParamRef in_proj;                 // q, k, v, g, gk_proj.0 weights, stacked [2Dk + 2Dv + r, D]
  ParamRef q_conv, k_conv, v_conv;  // short convs [Dk | Dv, W] (use_short_conv)
  ParamRef gk_up, gk_up_bias;       // gk_proj.1 [Dk, r], [Dk]
  ParamRef g_norm;                  // [Vh]
  ParamRef o_proj;                  // [D, Dv]
};

class GlaMixer final : public Mixer {
 public:
  GlaMixer(const ModelConfig& c, int layer, Backend& be, const MixerBinding& bind, int max_tokens,
           int chunk)
      : be_(be), arena_(be), chunk_(chunk) {
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
    bind_params(bind);
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

  TailInputs tail_inputs() override { return {&o_, &g_, Dv_}; }

  void scan_forward(const float* h, RunShape s) override {
    const int N = s.N(), K = Dk_ / H_, Vh = Dv_ / H_;
    h_ = h;
    // q, k, v, g and the gate's low-rank input: five projections of h as one stacked op.
    float* proj_out[kInProj] = {q_lin_.x, k_lin_.x, v_lin_.x, g_.x, gk_low_.x};
    be_.linear_stacked_forward(proj_out, in_proj_oc_, kInProj, h, p_.in_proj.w, N, D_);
    if (conv_) {
      short_conv_forward(q_.x, q_lin_.x, p_.q_conv, Dk_, s);
      short_conv_forward(k_.x, k_lin_.x, p_.k_conv, Dk_, s);
      short_conv_forward(v_.x, v_lin_.x, p_.v_conv, Dv_, s);
    }
    be_.linear_forward(gk_raw_.x, gk_low_.x, p_.gk_up.w, p_.gk_up_bias.w, N, r_, Dk_);
    be_.logsigmoid_forward(gk_.x, gk_raw_.x, gate_scale_, size_t(N) * Dk_);
    be_.gla_forward(o_.x, nullptr, q(), k(), v(), gk_.x, s.B, s.T, H_, K, Vh,
                    1.0f / std::sqrt(float(K)), chunk_);
  }

  // out = o_proj(rmsnorm_per_head(o) * g_norm.weight * swish(g)); a = o, b = g [R, Dv].
  void tail_forward(float* out, const float* o, const float* g, int R) override {
    be_.gla_norm_forward(o_n_.x, o_rstd_.x, o, g, p_.g_norm.w, R * H_, Dv_ / H_, eps_);
    be_.linear_forward(out, o_n_.x, p_.o_proj.w, nullptr, R, Dv_, D_);
  }

  void tail_backward(float* d_o, float* dg, const float* dout, const float* o, const float* g,
                     int R) override {
    be_.linear_backward(o_n_.d, p_.o_proj.g, nullptr, dout, o_n_.x, p_.o_proj.w, R, Dv_, D_,
                        false);
    be_.gla_norm_backward(d_o, dg, p_.g_norm.g, o_n_.d, o, g, p_.g_norm.w, o_rstd_.x, R * H_,
                          Dv_ / H_, false);
  }

  void scan_backward(float* dh, RunShape s) override {
    const int N = s.N(), K = Dk_ / H_, Vh = Dv_ / H_;
    // Every activation gradient has one writer here, which overwrites it (accumulate = false):
    // no zeroing pass. dh has one writer, the stacked input projection.
    be_.gla_backward(dq(), dk(), dv(), gk_.d, o_.d, nullptr, q(), k(), v(), gk_.x, s.B, s.T, H_, K,
                     Vh, 1.0f / std::sqrt(float(K)), chunk_, false);
    be_.logsigmoid_backward(gk_raw_.d, gk_.d, gk_raw_.x, gate_scale_, size_t(N) * Dk_, false);
    be_.linear_backward(gk_low_.d, p_.gk_up.g, p_.gk_up_bias.g, gk_raw_.d, gk_low_.x, p_.gk_up.w,
                        N, r_, Dk_, false);
    if (conv_) {
      short_conv_backward(q_lin_.d, q_.d, q_lin_.x, p_.q_conv, Dk_, s);
      short_conv_backward(k_lin_.d, k_.d, k_lin_.x, p_.k_conv, Dk_, s);
      short_conv_backward(v_lin_.d, v_.d, v_lin_.x, p_.v_conv, Dv_, s);
    }
    const float* proj_grad[kInProj] = {q_lin_.d, k_lin_.d, v_lin_.d, g_.d, gk_low_.d};
    be_.linear_stacked_backward(dh, p_.in_proj.g, proj_grad, in_proj_oc_, kInProj, h_,
                                p_.in_proj.w, N, D_, false);
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
  // Post-activation q/k/v (the conv output when the short conv is on, else the projection).
  float* q() { return conv_ ? q_.x : q_lin_.x; }
  float* k() { return conv_ ? k_.x : k_lin_.x; }
  float* v() { return conv_ ? v_.x : v_lin_.x; }
  float* dq() { return conv_ ? q_.d : q_lin_.d; }
  float* dk() { return conv_ ? k_.d : k_lin_.d; }
  float* dv() { return conv_ ? v_.d : v_lin_.d; }

  // act = silu(causal_conv(in)), fla's ShortConvolution (no bias).
  void short_conv_forward(float* act, const float* in, ParamRef w, int C, RunShape s) {
    be_.conv1d_silu_forward(act, in, w.w, nullptr, s.B, s.T, C, W_);
  }
  void short_conv_backward(float* din, const float* dact, const float* in, ParamRef w, int C,
                           RunShape s) {
    be_.conv1d_silu_backward(din, w.g, nullptr, dact, in, w.w, nullptr, s.B, s.T, C, W_, false);
  }

  // The stacked op needs the five input-projection weights adjacent, in this order, in the
  // flat parameter buffer (param_layout.cpp lays them out so; gradients share the layout).
  void bind_params(const MixerBinding& b) {
    static const char* names[kInProj] = {"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                         "g_proj.weight", "gk_proj.0.weight"};
    p_.in_proj = b.stacked(names, in_proj_oc_, kInProj, D_);
    if (conv_) {
      p_.q_conv = b("q_conv1d.weight");
      p_.k_conv = b("k_conv1d.weight");
      p_.v_conv = b("v_conv1d.weight");
    }
    p_.gk_up = b("gk_proj.1.weight");
    p_.gk_up_bias = b("gk_proj.1.bias");
    p_.g_norm = b("g_norm.weight");
    p_.o_proj = b("o_proj.weight");
  }

  static constexpr int kInProj = 5;  // q, k, v, g, gk_proj.0
  Backend& be_;
  Arena arena_;
  GlaParams p_;
  int chunk_;
  int D_, Dk_, Dv_, H_, r_, W_;
  int in_proj_oc_[kInProj];  // output widths of the stacked input projection
  bool conv_;
  float eps_, gate_scale_;
  const float* h_ = nullptr;  // input of the last scan_forward
  ActGrad q_lin_, k_lin_, v_lin_, g_, gk_low_, gk_raw_, gk_, o_, o_rstd_, o_n_;
  ActGrad q_, k_, v_;  // post-conv q/k/v (short conv on)
};

}  // namespace

std::unique_ptr<Mixer> make_gla_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                      const MixerBinding& bind, int max_tokens, int chunk) {
  return std::make_unique<GlaMixer>(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
