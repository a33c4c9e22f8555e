#pragma once
// The language model: embedding -> L pre-norm blocks (mixer, optional SwiGLU MLP) -> final
// RMSNorm -> LM head at labelled positions only -> softmax cross-entropy. Written once against
// the Backend op set; all buffers live in backend memory.
#include <cstdint>
#include <memory>
#include <vector>

#include "sim/core/backend.h"
#include "sim/core/config.h"
#include "sim/core/params.h"
#include "sim/io/run_record.h"
#include "sim/model/arena.h"
#include "sim/model/mixer.h"
#include "sim/model/output_rows.h"

namespace statex {

// One batch in backend memory. Only the M labelled positions reach the LM head.
struct DeviceBatch {
  int B = 0, T = 0;
  const int* tokens = nullptr;         // [B*T]
  int M = 0;
  const int* label_rows = nullptr;     // [M] flat row b*T+t of each labelled position
  const int* label_targets = nullptr;  // [M]
};

class Model {
 public:
  Model(const ModelConfig& cfg, Backend& be, int max_tokens, int gla_chunk, int ssd_chunk);
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  const ParamTable& table() const { return table_; }
  Backend& backend() { return be_; }
  int64_t n_params() const { return table_.total(); }
  float* params() { return params_; }
  float* grads() { return grads_; }

  void set_params(const std::vector<float>& host);  // size n_params()
  std::vector<float> get_params() const;
  std::vector<float> get_grads() const;

  // Forward pass; returns the mean cross-entropy over the M labelled positions.
  float forward(const DeviceBatch& b);
  // Backward of the last forward (same batch); accumulates into grads().
  void backward(const DeviceBatch& b);
  void zero_grads();

  // Results of the last forward, [M], in backend memory.
  const float* label_losses() const { return losses_; }
  const int* label_preds() const { return preds_; }
  const float* label_logits() const { return logits_; }  // [M, V]

  // kv_len: the evaluated sequence length at which attention's KV cache is counted.
  StateSize state_size(int kv_len = 0) const;
  double flops_per_token(int T) const;  // forward; a train step is ~3x (documented in bench)

 private:
  void ensure_labels(int M);
  void bind_params();
  // Layer l's mixer: the scan on all rows, the tail on the output rows (gathered when a subset).
  void mixer_forward(int l, float* out, const float* h, RunShape s, const OutputRows& rows);
  void mixer_backward(int l, float* dh, const float* dout, RunShape s, const OutputRows& rows);

  ModelConfig cfg_;
  Backend& be_;
  ParamTable table_;
  int max_tokens_;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  Arena arena_;         // params, grads, activations
  Arena label_arena_;   // buffers sized by the number of labelled positions
  int label_capacity_ = 0;
  std::vector<std::unique_ptr<Mixer>> mixers_;
  std::vector<std::unique_ptr<TailRows>> tails_;  // per layer: the mixer's tail inputs at the rows

  // Parameters outside the mixers, bound once.
  struct LayerParams {
    ParamRef pre_norm, mlp_norm, gate_proj, up_proj, down_proj;  // MLP ones only with cfg.mlp
  };
  std::vector<LayerParams> lp_;
  ParamRef embedding_, final_norm_, head_;  // head_ is the embedding when tied

  struct Layer {
    ActGrad resid_in;   // block input x_l [N, D] (grad: scratch)
    ActGrad normed;     // RMSNorm(x_l) [N, D]
    ActGrad rstd;       // [N]
    ActGrad mixed;      // mixer output [N, D]
    ActGrad resid_mid;  // x_l + mixer [N, D] (MLP input)
    ActGrad normed2, rstd2, gate, up, act, mlp_out;  // MLP only
  };
  std::vector<Layer> layers_;
  ActGrad final_in_, final_rstd_;  // [M, D], [M]: labelled rows only
  float* head_in_ = nullptr;   // [M, D] final-normed labelled rows
  float* dhead_in_ = nullptr;  // [M, D]
  float* logits_ = nullptr;    // [M, V]
  float* dlogits_ = nullptr;   // [M, V]: the same buffer as probs_ (overwritten in backward)
  float* probs_ = nullptr;     // [M, V]
  float* losses_ = nullptr;    // [M]
  int* preds_ = nullptr;       // [M]
  float* dresid_ = nullptr;    // [N, D] running gradient of the residual stream
};

}  // namespace statex
