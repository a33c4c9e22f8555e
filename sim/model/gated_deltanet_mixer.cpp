// Gated DeltaNet token mixer, semantics of fla's GatedDeltaNet layer (docs/design.md §1) with
// fla's defaults: use_gate = True, allow_neg_eigval = False, num_v_heads = num_heads (no GVA),
// conv_bias = False, mode = chunk. Head dims come from model.expand_k / model.expand_v / heads
// (K = Dk / H, V = Dv / H; fla's head_dim = K and its expand_v = Dv / Dk).
//   q,k [N,Dk], v,g [N,Dv], a,b [N,H] = projections of the normed input h [N,D]
//   q,k,v = silu(causal_conv(q,k,v))  (use_short_conv; without it fla applies silu alone)
//   q,k   = l2norm per head (eps 1e-6, fla use_qk_l2norm_in_kernel)
//   g_log [N,H] = -exp(A_log) softplus(a + dt_bias);  beta [N,H] = sigmoid(b)
//   o [N,Dv]    = chunked gated delta rule(q, k, v, g_log, beta), scale K^-0.5, per head
//   y [N,D]     = o_proj(rmsnorm_per_head(o) * o_norm.weight * swish(g))
#include "sim/model/gated_deltanet_mixer.h"

#include <algorithm>
#include <cmath>

#include "sim/model/arena.h"

namespace statex {

namespace {

constexpr float kL2NormEps = 1e-6f;  // fla l2norm default
constexpr float kBetaScale = 1.0f;   // 2 would be fla's allow_neg_eigval = True

// One layer's Gated DeltaNet tensors, bound once.
struct GatedDeltaNetParams {
  ParamRef in_proj;                 // q, k, v, g, a, b weights, stacked [2Dk + 2Dv + 2H, D]
  ParamRef q_conv, k_conv, v_conv;  // short convs [Dk | Dv, W] (use_short_conv)
  ParamRef A_log, dt_bias;          // [H]
  ParamRef o_norm;                  // [V]
  ParamRef o_proj;                  // [D, Dv]
};

class GatedDeltaNetMixer final : public Mixer {
 public:
  GatedDeltaNetMixer(const ModelConfig& c, int layer, Backend& be, const MixerBinding& bind,
                     int max_tokens, int chunk)
      : be_(be), arena_(be), chunk_(chunk) {
    D_ = c.d_model;
    Dk_ = c.key_dim();
    Dv_ = c.value_dim();
    H_ = c.layer_shape(layer).heads;
    W_ = c.conv_width;
    conv_ = c.use_short_conv;
    eps_ = c.norm_eps;
    const int widths[kInProj] = {Dk_, Dk_, Dv_, Dv_, H_, H_};
    std::copy(widths, widths + kInProj, in_proj_oc_);
    bind_params(bind);
    const size_t n = max_tokens;
    for (ActGrad* x : {&q_lin_, &k_lin_, &q_act_, &k_act_, &q_n_, &k_n_}) x->alloc(arena_, n, Dk_);
    for (ActGrad* x : {&v_lin_, &v_act_, &g_, &o_, &o_n_}) x->alloc(arena_, n, Dv_);
    for (ActGrad* x : {&a_raw_, &b_raw_, &g_log_, &beta_, &q_rstd_, &k_rstd_, &o_rstd_})
      x->alloc(arena_, n, H_);
  }

  TailInputs tail_inputs() override { return {&o_, &g_, Dv_}; }

  void scan_forward(const float* h, RunShape s) override {
    const int N = s.N(), K = Dk_ / H_, V = Dv_ / H_;
    h_ = h;
    float* proj_out[kInProj] = {q_lin_.x, k_lin_.x, v_lin_.x, g_.x, a_raw_.x, b_raw_.x};
    be_.linear_stacked_forward(proj_out, in_proj_oc_, kInProj, h, p_.in_proj.w, N, D_);
    activation_forward(q_act_.x, q_lin_.x, p_.q_conv, Dk_, s);
    activation_forward(k_act_.x, k_lin_.x, p_.k_conv, Dk_, s);
    activation_forward(v_act_.x, v_lin_.x, p_.v_conv, Dv_, s);
    be_.l2norm_forward(q_n_.x, q_rstd_.x, q_act_.x, N * H_, K, kL2NormEps);
    be_.l2norm_forward(k_n_.x, k_rstd_.x, k_act_.x, N * H_, K, kL2NormEps);
    be_.gated_delta_gate_forward(g_log_.x, beta_.x, a_raw_.x, b_raw_.x, p_.A_log.w,
                                 p_.dt_bias.w, N, H_, kBetaScale);
    be_.gated_delta_forward(o_.x, nullptr, q_n_.x, k_n_.x, v_act_.x, g_log_.x, beta_.x, s.B, s.T,
                            H_, K, V, 1.0f / std::sqrt(float(K)), chunk_);
  }

  // out = o_proj(rmsnorm_per_head(o) * o_norm.weight * swish(g)); a = o, b = g [R, Dv].
  void tail_forward(float* out, const float* o, const float* g, int R) override {
    be_.gla_norm_forward(o_n_.x, o_rstd_.x, o, g, p_.o_norm.w, R * H_, Dv_ / H_, eps_);
    be_.linear_forward(out, o_n_.x, p_.o_proj.w, nullptr, R, Dv_, D_);
  }

  void tail_backward(float* d_o, float* dg, const float* dout, const float* o, const float* g,
                     int R) override {
    be_.linear_backward(o_n_.d, p_.o_proj.g, nullptr, dout, o_n_.x, p_.o_proj.w, R, Dv_, D_,
                        false);
    be_.gla_norm_backward(d_o, dg, p_.o_norm.g, o_n_.d, o, g, p_.o_norm.w, o_rstd_.x, R * H_,
                          Dv_ / H_, false);
  }

  void scan_backward(float* dh, RunShape s) override {
    const int N = s.N(), K = Dk_ / H_, V = Dv_ / H_;
    // Each activation gradient has one writer, which overwrites it (accumulate = false).
    be_.gated_delta_backward(q_n_.d, k_n_.d, v_act_.d, g_log_.d, beta_.d, o_.d, nullptr, q_n_.x,
                             k_n_.x, v_act_.x, g_log_.x, beta_.x, s.B, s.T, H_, K, V,
                             1.0f / std::sqrt(float(K)), chunk_, false);
    be_.gated_delta_gate_backward(a_raw_.d, b_raw_.d, p_.A_log.g, p_.dt_bias.g, g_log_.d,
                                  beta_.d, a_raw_.x, b_raw_.x, p_.A_log.w, p_.dt_bias.w, N, H_,
                                  kBetaScale, false);
    be_.l2norm_backward(q_act_.d, q_n_.d, q_n_.x, q_rstd_.x, N * H_, K, false);
    be_.l2norm_backward(k_act_.d, k_n_.d, k_n_.x, k_rstd_.x, N * H_, K, false);
    activation_backward(q_lin_.d, q_act_.d, q_lin_.x, p_.q_conv, Dk_, s);
    activation_backward(k_lin_.d, k_act_.d, k_lin_.x, p_.k_conv, Dk_, s);
    activation_backward(v_lin_.d, v_act_.d, v_lin_.x, p_.v_conv, Dv_, s);
    const float* proj_grad[kInProj] = {q_lin_.d, k_lin_.d, v_lin_.d, g_.d, a_raw_.d, b_raw_.d};
    be_.linear_stacked_backward(dh, p_.in_proj.g, proj_grad, in_proj_oc_, kInProj, h_,
                                p_.in_proj.w, N, D_, false);
  }

  double flops_per_token(int T) const override {
    // Projections (2 flops per MAC): q, k, v, g, a, b, o. Recurrence per token per head (the
    // delta rule's k^T S, rank-1 update and readout): 6 K V = 6 Dk Dv / H^2 per head.
    const double proj = 2.0 * D_ * (2 * Dk_ + 3 * Dv_ + 2 * H_);
    const double scan = 6.0 * Dk_ * Dv_ / H_;
    const double conv = conv_ ? 2.0 * W_ * (2 * Dk_ + Dv_) : 0.0;
    return proj + scan + conv;
  }

 private:
  // act = silu(causal_conv(in)) (fla ShortConvolution, no bias), or silu(in) without the conv.
  void activation_forward(float* act, const float* in, ParamRef w, int C, RunShape s) {
    if (conv_)
      be_.conv1d_silu_forward(act, in, w.w, nullptr, s.B, s.T, C, W_);
    else
      be_.silu_forward(act, in, size_t(s.N()) * C);
  }
  void activation_backward(float* din, const float* dact, const float* in, ParamRef w, int C,
                           RunShape s) {
    if (conv_)
      be_.conv1d_silu_backward(din, w.g, nullptr, dact, in, w.w, nullptr, s.B, s.T, C, W_,
                               false);
    else
      be_.silu_backward(din, dact, in, size_t(s.N()) * C, false);
  }

  // The stacked op needs the six input-projection weights adjacent, in this order, in the flat
  // parameter buffer (param_layout.cpp lays them out so; gradients share the layout).
  void bind_params(const MixerBinding& b) {
    static const char* names[kInProj] = {"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                         "g_proj.weight", "a_proj.weight", "b_proj.weight"};
    p_.in_proj = b.stacked(names, in_proj_oc_, kInProj, D_);
    if (conv_) {
      p_.q_conv = b("q_conv1d.weight");
      p_.k_conv = b("k_conv1d.weight");
      p_.v_conv = b("v_conv1d.weight");
    }
    p_.A_log = b("A_log");
    p_.dt_bias = b("dt_bias");
    p_.o_norm = b("o_norm.weight");
    p_.o_proj = b("o_proj.weight");
  }

  static constexpr int kInProj = 6;  // q, k, v, g, a, b
  Backend& be_;
  Arena arena_;
  GatedDeltaNetParams p_;
  int chunk_;
  int D_, Dk_, Dv_, H_, W_;
  int in_proj_oc_[kInProj];
  bool conv_;
  float eps_;
  const float* h_ = nullptr;                           // input of the last scan_forward
  ActGrad q_lin_, k_lin_, v_lin_, g_, a_raw_, b_raw_;  // projections
  ActGrad q_act_, k_act_, v_act_;                      // after conv + SiLU
  ActGrad q_n_, k_n_, q_rstd_, k_rstd_;                // L2-normalised q, k
  ActGrad g_log_, beta_;                               // gates [N, H]
  ActGrad o_, o_n_, o_rstd_;                           // scan output, normed tail
};

}  // namespace

std::unique_ptr<Mixer> make_gated_deltanet_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                                 const MixerBinding& bind, int max_tokens,
                                                 int chunk) {
  return std::make_unique<GatedDeltaNetMixer>(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
