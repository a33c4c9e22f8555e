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
#include <stdexcept>

#include "sim/model/arena.h"

namespace statex {

namespace {

class AttentionMixer final : public Mixer {
 public:
  AttentionMixer(const ModelConfig& c, Backend& be, const MixerBinding& bind, int max_tokens)
      : be_(be), b_(bind), arena_(be), rows_arena_(be) {
    D_ = c.d_model;
    H_ = c.heads;
    Dh_ = D_ / H_;
    W_ = c.conv_width;
    conv_ = c.use_short_conv;
    rope_ = c.rope;
    theta_ = c.rope_theta;
    scale_ = 1.0f / std::sqrt(float(Dh_));
    for (int& w : in_proj_oc_) w = D_;
    check_stacked_in_proj();
    const size_t n = max_tokens;
    for (ActGrad* a : {&q_lin_, &k_lin_, &v_lin_, &o_}) a->alloc(arena_, n, D_);
    if (conv_)
      for (ActGrad* a : {&q_conv_, &k_conv_, &v_conv_}) a->alloc(arena_, n, D_);
    if (rope_)
      for (ActGrad* a : {&q_rot_, &k_rot_}) a->alloc(arena_, n, D_);
    lse_ = arena_.floats(n * H_);  // [B, H, T]
  }

  void forward(float* out, const float* h, RunShape s, const OutputRows& rows) override {
    const int N = s.N();
    h_ = h;
    float* proj_out[kInProj] = {q_lin_.x, k_lin_.x, v_lin_.x};
    be_.linear_stacked_forward(proj_out, in_proj_oc_, kInProj, h, b_.p("q_proj.weight"), N, D_);
    if (conv_) {
      for (int i = 0; i < kInProj; ++i)
        be_.conv1d_silu_forward(conv_out(i).x, lin(i).x, b_.p(kConvNames[i]), nullptr, s.B, s.T, D_,
                                W_);
    }
    if (rope_) {
      be_.rope_forward(q_rot_.x, qk_pre(0).x, s.B, s.T, H_, Dh_, theta_);
      be_.rope_forward(k_rot_.x, qk_pre(1).x, s.B, s.T, H_, Dh_, theta_);
    }
    be_.attention_forward(o_.x, lse_, q().x, k().x, v().x, s.B, s.T, H_, Dh_, scale_);
    // o_proj at the output rows only.
    const float* o_rows = o_.x;
    if (!rows.all()) {
      reserve_rows(rows.M);
      be_.gather_rows(o_sub_.x, o_.x, rows.idx, rows.M, D_);
      o_rows = o_sub_.x;
    }
    be_.linear_forward(out, o_rows, b_.p("o_proj.weight"), nullptr, rows.count(N), D_, D_);
  }

  void backward(float* dh, const float* dout, RunShape s, const OutputRows& rows) override {
    const int N = s.N();
    // Each activation gradient has one writer, which overwrites it (accumulate = false).
    if (rows.all()) {
      be_.linear_backward(o_.d, b_.g("o_proj.weight"), nullptr, dout, o_.x, b_.p("o_proj.weight"),
                          N, D_, D_, false);
    } else {  // off-label rows get zero gradient
      be_.linear_backward(o_sub_.d, b_.g("o_proj.weight"), nullptr, dout, o_sub_.x,
                          b_.p("o_proj.weight"), rows.M, D_, D_, false);
      be_.zero(o_.d, size_t(N) * D_ * sizeof(float));
      be_.scatter_add_rows(o_.d, o_sub_.d, rows.idx, rows.M, D_);
    }
    be_.attention_backward(q().d, k().d, v().d, o_.d, q().x, k().x, v().x, o_.x, lse_, s.B, s.T, H_,
                           Dh_, scale_, false);
    if (rope_) {
      be_.rope_backward(qk_pre(0).d, q_rot_.d, s.B, s.T, H_, Dh_, theta_, false);
      be_.rope_backward(qk_pre(1).d, k_rot_.d, s.B, s.T, H_, Dh_, theta_, false);
    }
    if (conv_) {
      for (int i = 0; i < kInProj; ++i)
        be_.conv1d_silu_backward(lin(i).d, b_.g(kConvNames[i]), nullptr, conv_out(i).d, lin(i).x,
                                 b_.p(kConvNames[i]), nullptr, s.B, s.T, D_, W_, false);
    }
    const float* proj_grad[kInProj] = {q_lin_.d, k_lin_.d, v_lin_.d};
    be_.linear_stacked_backward(dh, b_.g("q_proj.weight"), proj_grad, in_proj_oc_, kInProj, h_,
                                b_.p("q_proj.weight"), N, D_, false);
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
  static constexpr const char* kConvNames[kInProj] = {"q_conv1d.weight", "k_conv1d.weight",
                                                      "v_conv1d.weight"};

  ActGrad& lin(int i) { return *std::array<ActGrad*, 3>{&q_lin_, &k_lin_, &v_lin_}[i]; }
  ActGrad& conv_out(int i) { return *std::array<ActGrad*, 3>{&q_conv_, &k_conv_, &v_conv_}[i]; }
  // q, k, v after the short conv (when on): the input of RoPE (q, k) and of attention (v).
  ActGrad& qk_pre(int i) { return conv_ ? conv_out(i) : lin(i); }
  // What attention reads.
  ActGrad& q() { return rope_ ? q_rot_ : qk_pre(0); }
  ActGrad& k() { return rope_ ? k_rot_ : qk_pre(1); }
  ActGrad& v() { return qk_pre(2); }

  // The output rows' gather buffer [M, D] grows with the largest label count seen.
  void reserve_rows(int M) {
    if (M <= rows_capacity_) return;
    rows_arena_.release();
    rows_capacity_ = M;
    o_sub_.alloc(rows_arena_, M, D_);
  }

  // The stacked op needs q/k/v_proj adjacent and in order in the flat buffer (param_layout.cpp).
  void check_stacked_in_proj() const {
    if (b_.p("k_proj.weight") != b_.p("q_proj.weight") + size_t(D_) * D_ ||
        b_.p("v_proj.weight") != b_.p("k_proj.weight") + size_t(D_) * D_)
      throw std::logic_error("attention mixer: q/k/v projection weights are not stacked in order");
  }

  Backend& be_;
  MixerBinding b_;
  Arena arena_, rows_arena_;
  int D_, H_, Dh_, W_, rows_capacity_ = 0;
  int in_proj_oc_[kInProj] = {0, 0, 0};
  bool conv_, rope_;
  float theta_, scale_;
  const float* h_ = nullptr;          // input of the last forward
  ActGrad q_lin_, k_lin_, v_lin_;     // projections [N, D]
  ActGrad q_conv_, k_conv_, v_conv_;  // after the short conv (use_short_conv)
  ActGrad q_rot_, k_rot_;             // after RoPE (rope)
  ActGrad o_, o_sub_;                 // attention output [N, D]; at the output rows [M, D]
  float* lse_ = nullptr;              // [B, H, T] softmax log-sum-exp (attention backward)
};

}  // namespace

std::unique_ptr<Mixer> make_attention_mixer(const ModelConfig& cfg, Backend& be,
                                            const MixerBinding& bind, int max_tokens) {
  return std::make_unique<AttentionMixer>(cfg, be, bind, max_tokens);
}

}  // namespace statex
