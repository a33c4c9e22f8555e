#include "sim/model/model.h"

#include "sim/model/param_layout.h"
#include "sim/model/state_size.h"

namespace statex {

Model::Model(const ModelConfig& cfg, Backend& be, int max_tokens, int gla_chunk, int ssd_chunk)
    : cfg_(cfg), be_(be), table_(build_param_table(cfg)), max_tokens_(max_tokens), arena_(be),
      label_arena_(be) {
  validate(cfg_);
  params_ = arena_.floats(table_.total());
  grads_ = arena_.floats(table_.total());
  const size_t n = max_tokens, D = cfg.d_model, F = cfg.hidden_mlp();
  ModelNames nm = model_names(cfg);
  layers_.resize(cfg.n_layers);
  for (int l = 0; l < cfg.n_layers; ++l) {
    Layer& L = layers_[l];
    L.resid_in.alloc(arena_, n, D);
    L.normed.alloc(arena_, n, D);
    L.rstd.alloc(arena_, n, 1);
    L.mixed.alloc(arena_, n, D);
    L.resid_mid.alloc(arena_, n, D);
    if (cfg.mlp) {
      L.normed2.alloc(arena_, n, D);
      L.rstd2.alloc(arena_, n, 1);
      for (ActGrad* a : {&L.gate, &L.up, &L.act}) a->alloc(arena_, n, F);
      L.mlp_out.alloc(arena_, n, D);
    }
    MixerBinding bind{&table_, nm.layer(l) + nm.mixer, params_, grads_};
    mixers_.push_back(
        make_mixer(cfg, l, be, bind, max_tokens, cfg.model == "mamba2" ? ssd_chunk : gla_chunk));
    const Mixer::TailInputs io = mixers_.back()->tail_inputs();
    tails_.push_back(std::make_unique<TailRows>(be, io.width, *io.a, *io.b));
  }
  bind_params();
  final_in_.alloc(arena_, n, D);  // [M, D] used: the last block's output at the labelled rows
  final_rstd_.alloc(arena_, n, 1);
  dresid_ = arena_.floats(n * D);
}

Model::~Model() {
  tails_.clear();
  mixers_.clear();  // mixers free their buffers before the arenas go
}

void Model::bind_params() {
  const ModelNames nm = model_names(cfg_);
  auto bind = [&](const std::string& name) {
    const int64_t o = table_.at(name).offset;
    return ParamRef{params_ + o, grads_ + o};
  };
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const std::string pre = nm.layer(l);
    LayerParams p;
    p.pre_norm = bind(pre + nm.pre_norm);
    if (cfg_.mlp) {
      p.mlp_norm = bind(pre + nm.mlp_norm);
      p.gate_proj = bind(pre + "mlp.gate_proj.weight");
      p.up_proj = bind(pre + "mlp.up_proj.weight");
      p.down_proj = bind(pre + "mlp.down_proj.weight");
    }
    lp_.push_back(p);
  }
  embedding_ = bind(nm.embedding);
  final_norm_ = bind(nm.final_norm);
  head_ = cfg_.tie_embeddings ? embedding_ : bind("lm_head.weight");
}

void Model::mixer_forward(int l, float* out, const float* h, RunShape s, const OutputRows& rows) {
  mixers_[l]->scan_forward(h, s);
  const TailRows::Buffers t = tails_[l]->inputs(rows, s.N());
  mixers_[l]->tail_forward(out, t.a, t.b, t.rows);
}

void Model::mixer_backward(int l, float* dh, const float* dout, RunShape s,
                           const OutputRows& rows) {
  const TailRows::Buffers t = tails_[l]->grads(rows, s.N());
  mixers_[l]->tail_backward(t.da, t.db, dout, t.a, t.b, t.rows);
  tails_[l]->scatter_grads(rows, s.N());  // into the tail inputs' [N, W] gradients
  mixers_[l]->scan_backward(dh, s);
}

void Model::set_params(const std::vector<float>& host) {
  if (int64_t(host.size()) != table_.total())
    throw std::invalid_argument("set_params: size mismatch");
  be_.to_device(params_, host.data(), host.size() * sizeof(float));
}

std::vector<float> Model::get_params() const {
  std::vector<float> h(table_.total());
  be_.to_host(h.data(), params_, h.size() * sizeof(float));
  return h;
}

std::vector<float> Model::get_grads() const {
  std::vector<float> h(table_.total());
  be_.to_host(h.data(), grads_, h.size() * sizeof(float));
  return h;
}

void Model::zero_grads() { be_.zero(grads_, table_.total() * sizeof(float)); }

void Model::ensure_labels(int M) {
  if (M <= label_capacity_) return;
  label_arena_.release();
  label_capacity_ = M;
  const size_t D = cfg_.d_model, V = cfg_.vocab_size;
  head_in_ = label_arena_.floats(size_t(M) * D);
  dhead_in_ = label_arena_.floats(size_t(M) * D);
  logits_ = label_arena_.floats(size_t(M) * V);
  probs_ = label_arena_.floats(size_t(M) * V);
  dlogits_ = probs_;  // the xent backward overwrites the probabilities in place
  losses_ = label_arena_.floats(M);
  preds_ = label_arena_.ints(M);
}

float Model::forward(const DeviceBatch& b) {
  const int N = b.B * b.T, D = cfg_.d_model, V = cfg_.vocab_size, F = cfg_.hidden_mlp();
  if (N > max_tokens_) throw std::invalid_argument("batch larger than the model's buffers");
  if (b.M < 1) throw std::invalid_argument("batch has no labelled positions");
  ensure_labels(b.M);
  const RunShape s{b.B, b.T};

  be_.embedding_forward(layers_[0].resid_in.x, b.tokens, embedding_.w, N, D);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    Layer& L = layers_[l];
    const LayerParams& p = lp_[l];
    be_.rmsnorm_forward(L.normed.x, L.rstd.x, L.resid_in.x, p.pre_norm.w, N, D, cfg_.norm_eps);
    // The last layer's tail (mixer output, residual, MLP) runs on the labelled rows only: R rows
    // in label order (output_rows.h).
    const bool last = l + 1 == cfg_.n_layers;
    const OutputRows rows = last ? OutputRows{b.label_rows, b.M} : OutputRows{};
    const int R = rows.count(N);
    mixer_forward(l, L.mixed.x, L.normed.x, s, rows);
    if (last)
      be_.gather_rows(L.resid_mid.x, L.resid_in.x, b.label_rows, R, D);
    else
      be_.strided_copy(L.resid_mid.x, D, L.resid_in.x, D, N, D, false);
    be_.add_inplace(L.resid_mid.x, L.mixed.x, size_t(R) * D);
    float* block_out = last ? final_in_.x : layers_[l + 1].resid_in.x;
    be_.strided_copy(block_out, D, L.resid_mid.x, D, R, D, false);
    if (cfg_.mlp) {
      be_.rmsnorm_forward(L.normed2.x, L.rstd2.x, L.resid_mid.x, p.mlp_norm.w, R, D,
                          cfg_.norm_eps);
      be_.linear_forward(L.gate.x, L.normed2.x, p.gate_proj.w, nullptr, R, D, F);
      be_.linear_forward(L.up.x, L.normed2.x, p.up_proj.w, nullptr, R, D, F);
      be_.swiglu_forward(L.act.x, L.gate.x, L.up.x, size_t(R) * F);
      be_.linear_forward(L.mlp_out.x, L.act.x, p.down_proj.w, nullptr, R, F, D);
      be_.add_inplace(block_out, L.mlp_out.x, size_t(R) * D);
    }
  }
  // final_in_ holds the labelled rows [M, D]; LM head: [M, D] · [V, D]^T.
  be_.rmsnorm_forward(head_in_, final_rstd_.x, final_in_.x, final_norm_.w, b.M, D, cfg_.norm_eps);
  be_.linear_forward(logits_, head_in_, head_.w, nullptr, b.M, D, V);
  be_.xent_forward(losses_, probs_, preds_, logits_, b.label_targets, b.M, V);

  std::vector<float> losses(b.M);
  be_.to_host(losses.data(), losses_, losses.size() * sizeof(float));
  double sum = 0;
  for (float x : losses) sum += x;
  return float(sum / b.M);
}

void Model::backward(const DeviceBatch& b) {
  const int N = b.B * b.T, D = cfg_.d_model, V = cfg_.vocab_size, F = cfg_.hidden_mlp();
  const RunShape s{b.B, b.T};

  // Loss = mean over the M labelled positions. Each activation gradient's first writer
  // overwrites it (accumulate = false). dlogits_ is probs_: overwritten in place.
  be_.xent_backward(dlogits_, probs_, b.label_targets, 1.0f / b.M, b.M, V, false);
  be_.linear_backward(dhead_in_, head_.g, nullptr, dlogits_, head_in_, head_.w, b.M, D, V, false);
  // The last block's output gradient, at the labelled rows [M, D].
  be_.rmsnorm_backward(final_in_.d, final_norm_.g, dhead_in_, final_in_.x, final_norm_.w,
                       final_rstd_.x, b.M, D, false);

  // dblock holds d(block output) (rows R); each block adds its branches' input gradients into
  // it. Below the last block it is dresid_ [N, D].
  for (int l = cfg_.n_layers - 1; l >= 0; --l) {
    Layer& L = layers_[l];
    const LayerParams& p = lp_[l];
    const bool last = l + 1 == cfg_.n_layers;
    const OutputRows rows = last ? OutputRows{b.label_rows, b.M} : OutputRows{};
    const int R = rows.count(N);
    float* dblock = last ? final_in_.d : dresid_;
    if (cfg_.mlp) {
      be_.linear_backward(L.act.d, p.down_proj.g, nullptr, dblock, L.act.x, p.down_proj.w, R, F,
                          D, false);
      be_.swiglu_backward(L.gate.d, L.up.d, L.act.d, L.gate.x, L.up.x, size_t(R) * F, false);
      be_.linear_backward(L.normed2.d, p.gate_proj.g, nullptr, L.gate.d, L.normed2.x,
                          p.gate_proj.w, R, D, F, false);
      be_.linear_backward(L.normed2.d, p.up_proj.g, nullptr, L.up.d, L.normed2.x, p.up_proj.w, R,
                          D, F, true);
      be_.rmsnorm_backward(dblock, p.mlp_norm.g, L.normed2.d, L.resid_mid.x, p.mlp_norm.w,
                           L.rstd2.x, R, D, true);
    }
    mixer_backward(l, L.normed.d, dblock, s, rows);  // overwrites L.normed.d [N, D]
    if (last) {  // the residual path of the labelled rows; the other rows' gradient is zero
      be_.zero(dresid_, size_t(N) * D * sizeof(float));
      be_.scatter_add_rows(dresid_, final_in_.d, b.label_rows, b.M, D);
    }
    be_.rmsnorm_backward(dresid_, p.pre_norm.g, L.normed.d, L.resid_in.x, p.pre_norm.w, L.rstd.x,
                         N, D, true);
  }
  be_.embedding_backward(embedding_.g, dresid_, b.tokens, N, D);
}

StateSize Model::state_size(int kv_len) const { return compute_state_size(cfg_, kv_len); }

double Model::flops_per_token(int T) const {
  const double D = cfg_.d_model, F = cfg_.hidden_mlp();
  double f = 0;
  for (auto& m : mixers_) f += m->flops_per_token(T);
  if (cfg_.mlp) f += cfg_.n_layers * 2.0 * 3.0 * D * F;
  return f;  // the LM head runs on labelled positions only; bench adds it per labelled token
}

}  // namespace statex
