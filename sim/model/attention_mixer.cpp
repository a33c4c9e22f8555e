// Softmax attention token mixer, semantics of fla's Attention and Zoology's MHA (docs/design.md
// §1 "Softmax attention"), no dropout, no bias:
//   q, k, v [N, D] = projections of the normed input h [N, D] (one stacked op)
//   (use_short_conv: q, k, v = silu(causal_conv(q, k, v)), GLA's ShortConvolution; Zoology
//    puts a short conv before attention and uses no positional embedding)
//   (rope: q, k = RoPE(q), RoPE(k) per head, fla's rotate-half form)
//   o [N, D] = causal softmax attention with H heads of Dh = D / H, scale Dh^-0.5
//   y [N, D] = o_proj(o)
// Its "state" is the KV cache (sim/model/state_size.cpp), which grows with T; StateX does not
// apply.
#include "sim/model/attention_mixer.h"

#include <array>
#include <cmath>

#include "sim/model/arena.h"

namespace statex {

namespace {

// One layer's attention tensors, bound once.
struct AttentionParams {
  ParamRef in_proj;                 // q, k, v weights, stacked [3D, D]
  ParamRef q_conv, k_conv, v_conv;  // short convs [D, W] (use_short_conv)
  ParamRef o_proj;                  // [D, D]
};

class AttentionMixer final : public Mixer {
 public:
  AttentionMixer(const ModelConfig& c, Backend& be, const MixerBinding& bind, int max_tokens)
      : be_(be), arena_(be) {
    D_ = c.d_model;
    H_ = c.heads;
    Dh_ = D_ / H_;
    W_ = c.conv_width;
    conv_ = c.use_short_conv;
    rope_ = c.rope;
    theta_ = c.rope_theta;
    scale_ = 1.0f / std::sqrt(float(Dh_));
    for (int& w : in_proj_oc_) w = D_;
    bind_params(bind);
    const size_t n = max_tokens;
    for (ActGrad* a : {&q_lin_, &k_lin_, &v_lin_, &o_, &unused_}) a->alloc(arena_, n, D_);
    if (conv_)
      for (ActGrad* a : {&q_conv_, &k_conv_, &v_conv_}) a->alloc(arena_, n, D_);
    if (rope_)
      for (ActGrad* a : {&q_rot_, &k_rot_}) a->alloc(arena_, n, D_);
    lse_ = arena_.floats(n * H_);  // [B, H, T]
  }

  // The tail reads only o; the second input is an unused [N, D] buffer (its gradient is zero).
  TailInputs tail_inputs() override { return {&o_, &unused_, D_}; }

  void scan_forward(const float* h, RunShape s) override {
    const int N = s.N();
    h_ = h;
    float* proj_out[kInProj] = {q_lin_.x, k_lin_.x, v_lin_.x};
    be_.linear_stacked_forward(proj_out, in_proj_oc_, kInProj, h, p_.in_proj.w, N, D_);
    if (conv_)
      for (int i = 0; i < kInProj; ++i)
        be_.conv1d_silu_forward(conv_out(i).x, lin(i).x, conv_w(i).w, nullptr, s.B, s.T, D_, W_);
    if (rope_) {
      be_.rope_forward(q_rot_.x, qk_pre(0).x, s.B, s.T, H_, Dh_, theta_);
      be_.rope_forward(k_rot_.x, qk_pre(1).x, s.B, s.T, H_, Dh_, theta_);
    }
    be_.attention_forward(o_.x, lse_, q().x, k().x, v().x, s.B, s.T, H_, Dh_, scale_);
  }

  // out [R, D] = o_proj(o); a = o [R, D], b unused.
  void tail_forward(float* out, const float* o, const float* /*b*/, int R) override {
    be_.linear_forward(out, o, p_.o_proj.w, nullptr, R, D_, D_);
  }

  void tail_backward(float* d_o, float* db, const float* dout, const float* o, const float* /*b*/,
                     int R) override {
    be_.linear_backward(d_o, p_.o_proj.g, nullptr, dout, o, p_.o_proj.w, R, D_, D_, false);
    be_.zero(db, size_t(R) * D_ * sizeof(float));
  }

  void scan_backward(float* dh, RunShape s) override {
    const int N = s.N();
    // Each activation gradient has one writer, which overwrites it (accumulate = false).
    be_.attention_backward(q().d, k().d, v().d, o_.d, q().x, k().x, v().x, o_.x, lse_, s.B, s.T, H_,
                           Dh_, scale_, false);
    if (rope_) {
      be_.rope_backward(qk_pre(0).d, q_rot_.d, s.B, s.T, H_, Dh_, theta_, false);
      be_.rope_backward(qk_pre(1).d, k_rot_.d, s.B, s.T, H_, Dh_, theta_, false);
    }
    if (conv_)
      for (int i = 0; i < kInProj; ++i)
        be_.conv1d_silu_backward(lin(i).d, conv_w(i).g, nullptr, conv_out(i).d, lin(i).x,
                                 conv_w(i).w, nullptr, s.B, s.T, D_, W_, false);
    const float* proj_grad[kInProj] = {q_lin_.d, k_lin_.d, v_lin_.d};
    be_.linear_stacked_backward(dh, p_.in_proj.g, proj_grad, in_proj_oc_, kInProj, h_, p_.in_proj.w,
                                N, D_, false);
  }

  double flops_per_token(int T) const override {
    // Projections q, k, v, o: 4 x 2 D^2. Scores and weighted sum: a query at position t reads
    // t + 1 keys, (T + 1) / 2 on average, 2 x 2 D flops each. Conv: 2 W per channel of q, k, v.
    double proj = 8.0 * D_ * D_;
    double attn = 2.0 * D_ * (T + 1);
    double conv = conv_ ? 2.0 * W_ * 3 * D_ : 0.0;
    return proj + attn + conv;
  }

 private:
  static constexpr int kInProj = 3;  // q, k, v

  ActGrad& lin(int i) { return *std::array<ActGrad*, 3>{&q_lin_, &k_lin_, &v_lin_}[i]; }
  ActGrad& conv_out(int i) { return *std::array<ActGrad*, 3>{&q_conv_, &k_conv_, &v_conv_}[i]; }
  ParamRef conv_w(int i) const {
    return std::array<ParamRef, 3>{p_.q_conv, p_.k_conv, p_.v_conv}[i];
  }
  // q, k, v after the short conv (when on): the input of RoPE (q, k) and of attention (v).
  ActGrad& qk_pre(int i) { return conv_ ? conv_out(i) : lin(i); }
  // What attention reads.
  ActGrad& q() { return rope_ ? q_rot_ : qk_pre(0); }
  ActGrad& k() { return rope_ ? k_rot_ : qk_pre(1); }
  ActGrad& v() { return qk_pre(2); }

  // The stacked op needs q/k/v_proj adjacent and in order in the flat buffer (param_layout.cpp).
  void bind_params(const MixerBinding& b) {
    static const char* names[3] = {"q_proj.weight", "k_proj.weight", "v_proj.weight"};
    const int rows[3] = {D_, D_, D_};
    p_.in_proj = b.stacked(names, rows, 3, D_);
    if (conv_) {
      p_.q_conv = b("q_conv1d.weight");
      p_.k_conv = b("k_conv1d.weight");
      p_.v_conv = b("v_conv1d.weight");
    }
    p_.o_proj = b("o_proj.weight");
  }

  Backend& be_;
  Arena arena_;
  AttentionParams p_;
  int D_, H_, Dh_, W_;
  int in_proj_oc_[kInProj] = {0, 0, 0};
  bool conv_, rope_;
  float theta_, scale_;
  const float* h_ = nullptr;          // input of the last scan_forward
  ActGrad q_lin_, k_lin_, v_lin_;     // projections [N, D]
  ActGrad q_conv_, k_conv_, v_conv_;  // after the short conv (use_short_conv)
  ActGrad q_rot_, k_rot_;             // after RoPE (rope)
  ActGrad o_;                         // attention output [N, D], the tail's input
  ActGrad unused_;                    // the tail's second input slot (attention has none)
  float* lse_ = nullptr;              // [B, H, T] softmax log-sum-exp (attention backward)
};

}  // namespace

std::unique_ptr<Mixer> make_attention_mixer(const ModelConfig& cfg, Backend& be,
                                            const MixerBinding& bind, int max_tokens) {
  return std::make_unique<AttentionMixer>(cfg, be, bind, max_tokens);
}

}  // namespace statex
