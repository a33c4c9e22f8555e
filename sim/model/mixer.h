#pragma once
// A token mixer (GLA, Mamba2 or Gated DeltaNet) of one layer. It reads its parameters and writes its parameter
// gradients through pointers into the model's flat buffers, and keeps the activations of the
// last forward for backward.
#include <memory>
#include <string>

#include "sim/core/backend.h"
#include "sim/core/config.h"
#include "sim/core/params.h"
#include "sim/model/output_rows.h"

namespace statex {

// Where one layer's mixer finds its tensors: name (relative to the mixer prefix) -> pointer.
struct MixerBinding {
  const ParamTable* table = nullptr;
  std::string prefix;       // e.g. "model.layers.0.attn."
  float* params = nullptr;  // model flat buffers (backend memory)
  float* grads = nullptr;
  float* p(const std::string& name) const { return params + table->at(prefix + name).offset; }
  float* g(const std::string& name) const { return grads + table->at(prefix + name).offset; }
};

struct RunShape {
  int B = 0, T = 0;
  int N() const { return B * T; }
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  // out = mixer(in [N, D]) at the output rows: out [N, D] for all rows, else [M, D] in idx order.
  // `in` must stay valid until backward.
  virtual void forward(float* out, const float* in, RunShape s, const OutputRows& rows) = 0;
  // din [N, D] = d mixer / d in · dout (overwritten; its old contents are never read), dout at
  // the output rows of the forward ([N, D] or [M, D]); parameter gradients accumulate into the
  // flat buffer.
  virtual void backward(float* din, const float* dout, RunShape s, const OutputRows& rows) = 0;
  // Forward FLOPs per token (documented formula; used by bench).
  virtual double flops_per_token(int T) const = 0;
};

// Builds the mixer of `layer`; buffers are allocated for up to max_tokens rows.
std::unique_ptr<Mixer> make_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                  const MixerBinding& bind, int max_tokens, int chunk);

}  // namespace statex
