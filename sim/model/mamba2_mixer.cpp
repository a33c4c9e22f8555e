// Mamba2 token mixer, semantics of mamba_ssm Mamba2 (docs/design.md §1):
//   [z | xBC | dt_raw] = h · in_proj^T            z [N,di], xBC [N,di+2GN], dt_raw [N,Hm]
//   xBC = silu(causal_conv1d(xBC) + conv1d.bias);  split into x [N,Hm,P], B [N,G,N], C [N,G,N]
//   dt = softplus(dt_raw + dt_bias); A = -exp(A_log)
//   y = SSD(x, dt, A, B, C) + D * x                [N, di]
//   out = out_proj(RMSNorm_group(y * silu(z)) * norm.weight)
#include <vector>

#include "sim/model/arena.h"
#include "sim/model/mamba2_mixer.h"

namespace statex {

namespace {

// One layer's Mamba2 tensors, bound once.
struct Mamba2Params {
  ParamRef in_proj;           // [di + conv_dim + H, D]: rows z | xBC | dt_raw
  ParamRef conv, conv_bias;   // [conv_dim, W], [conv_dim]
  ParamRef dt_bias, A_log, D;  // [H] each
  ParamRef norm;              // gated norm weight [di]
  ParamRef out_proj;          // [D, di]
};

class Mamba2Mixer final : public Mixer {
 public:
  // mamba_ssm builds Mamba2's gated RMSNorm with eps 1e-5 whatever norm_epsilon is (that only
  // sets the block norms and the final norm); so do we.
  static constexpr float kGatedNormEps = 1e-5f;

  Mamba2Mixer(const ModelConfig& c, int layer, Backend& be, const MixerBinding& bind,
              int max_tokens, int chunk)
      : be_(be), arena_(be), chunk_(chunk) {
    D_ = c.d_model;
    di_ = c.d_inner();
    P_ = c.head_dim;
    H_ = di_ / P_;
    G_ = c.ngroups;
    Ns_ = c.layer_shape(layer).d_state;
    W_ = c.conv_width;
    eps_ = kGatedNormEps;  // not c.norm_eps: mamba_ssm's Mamba2 fixes its RMSNormGated eps
    conv_dim_ = di_ + 2 * G_ * Ns_;
    in_dim_ = di_ + conv_dim_ + H_;
    in_proj_oc_[0] = di_;
    in_proj_oc_[1] = conv_dim_;
    in_proj_oc_[2] = H_;
    p_ = {bind("in_proj.weight"), bind("conv1d.weight"), bind("conv1d.bias"), bind("dt_bias"),
          bind("A_log"), bind("D"), bind("norm.weight"), bind("out_proj.weight")};
    size_t n = max_tokens;
    for (ActGrad* a : {&xbc_raw_, &xbc_}) a->alloc(arena_, n, conv_dim_);
    for (ActGrad* a : {&x_, &z_, &y_, &yn_}) a->alloc(arena_, n, di_);
    Bm_.alloc(arena_, n, G_ * Ns_);
    Cm_.alloc(arena_, n, G_ * Ns_);
    for (ActGrad* a : {&dt_raw_, &dt_}) a->alloc(arena_, n, H_);
    rstd_.alloc(arena_, n, G_);
  }

  TailInputs tail_inputs() override { return {&y_, &z_, di_}; }

  void scan_forward(const float* h, RunShape s) override {
    const int N = s.N();
    h_ = h;
    // in_proj's three column blocks [z | xBC | dt] straight into contiguous buffers (its weight
    // rows are stacked in that order).
    float* proj_out[3] = {z_.x, xbc_raw_.x, dt_raw_.x};
    be_.linear_stacked_forward(proj_out, in_proj_oc_, 3, h, p_.in_proj.w, N, D_);
    be_.conv1d_silu_forward(xbc_.x, xbc_raw_.x, p_.conv.w, p_.conv_bias.w, s.B, s.T, conv_dim_,
                            W_);
    be_.strided_copy(x_.x, di_, xbc_.x, conv_dim_, N, di_, false);
    be_.strided_copy(Bm_.x, G_ * Ns_, xbc_.x + di_, conv_dim_, N, G_ * Ns_, false);
    be_.strided_copy(Cm_.x, G_ * Ns_, xbc_.x + di_ + G_ * Ns_, conv_dim_, N, G_ * Ns_, false);
    be_.softplus_bias_forward(dt_.x, dt_raw_.x, p_.dt_bias.w, N, H_);
    be_.ssd_forward(y_.x, nullptr, x_.x, dt_.x, p_.A_log.w, Bm_.x, Cm_.x, s.B, s.T, H_, P_, G_,
                    Ns_, chunk_);
    be_.ssd_dskip_forward(y_.x, x_.x, p_.D.w, N, H_, P_);
  }

  // out = out_proj(RMSNorm_group(y * silu(z)) * norm.weight); a = y, b = z [R, di].
  void tail_forward(float* out, const float* y, const float* z, int R) override {
    be_.gated_rmsnorm_forward(yn_.x, rstd_.x, y, z, p_.norm.w, R, di_, di_ / G_, eps_);
    be_.linear_forward(out, yn_.x, p_.out_proj.w, nullptr, R, di_, D_);
  }

  void tail_backward(float* dy, float* dz, const float* dout, const float* y, const float* z,
                     int R) override {
    be_.linear_backward(yn_.d, p_.out_proj.g, nullptr, dout, yn_.x, p_.out_proj.w, R, di_, D_,
                        false);
    be_.gated_rmsnorm_backward(dy, dz, p_.norm.g, yn_.d, y, z, p_.norm.w, rstd_.x, R, di_,
                               di_ / G_, false);
  }

  void scan_backward(float* dh, RunShape s) override {
    const int N = s.N();
    // Each activation gradient's first writer overwrites it (accumulate = false), so none is
    // zeroed: the ops below, the split copies (whole column blocks), and the D skip, which adds
    // to the SSD's dx.
    be_.ssd_backward(x_.d, dt_.d, p_.A_log.g, Bm_.d, Cm_.d, y_.d, nullptr, x_.x, dt_.x, p_.A_log.w,
                     Bm_.x, Cm_.x, s.B, s.T, H_, P_, G_, Ns_, chunk_, false);
    be_.ssd_dskip_backward(x_.d, p_.D.g, y_.d, x_.x, p_.D.w, N, H_, P_, true);
    be_.softplus_bias_backward(dt_raw_.d, p_.dt_bias.g, dt_.d, dt_raw_.x, p_.dt_bias.w, N, H_,
                               false);
    // Assemble d(xBC) from its three parts (overwriting), then back through silu and the conv.
    be_.strided_copy(xbc_.d, conv_dim_, x_.d, di_, N, di_, false);
    be_.strided_copy(xbc_.d + di_, conv_dim_, Bm_.d, G_ * Ns_, N, G_ * Ns_, false);
    be_.strided_copy(xbc_.d + di_ + G_ * Ns_, conv_dim_, Cm_.d, G_ * Ns_, N, G_ * Ns_, false);
    be_.conv1d_silu_backward(xbc_raw_.d, p_.conv.g, p_.conv_bias.g, xbc_.d, xbc_raw_.x, p_.conv.w,
                             p_.conv_bias.w, s.B, s.T, conv_dim_, W_, false);
    const float* proj_grad[3] = {z_.d, xbc_raw_.d, dt_raw_.d};
    be_.linear_stacked_backward(dh, p_.in_proj.g, proj_grad, in_proj_oc_, 3, h_, p_.in_proj.w, N,
                                D_, false);
  }

  double flops_per_token(int T) const override {
    // in/out projections + conv + SSD recurrence (state update 2 P N and readout 2 P N per head).
    double proj = 2.0 * D_ * in_dim_ + 2.0 * di_ * D_;
    double conv = 2.0 * W_ * conv_dim_;
    double scan = 4.0 * H_ * P_ * Ns_;
    return proj + conv + scan;
  }

 private:
  Backend& be_;
  Arena arena_;
  Mamba2Params p_;
  int chunk_;
  int D_, di_, P_, H_, G_, Ns_, W_, conv_dim_, in_dim_;
  int in_proj_oc_[3];  // in_proj's column blocks: z, xBC, dt_raw
  float eps_;
  const float* h_ = nullptr;  // input of the last scan_forward
  ActGrad xbc_raw_, xbc_, x_, z_, y_, yn_, Bm_, Cm_, dt_raw_, dt_, rstd_;
};

}  // namespace

std::unique_ptr<Mixer> make_mamba2_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                         const MixerBinding& bind, int max_tokens, int chunk) {
  return std::make_unique<Mamba2Mixer>(cfg, layer, be, bind, max_tokens, chunk);
}

}  // namespace statex
