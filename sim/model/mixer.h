#pragma once
// A token mixer (GLA, Mamba2 or Gated DeltaNet) of one layer, in two parts:
//  - the scan: everything from the block's normed input h [N, D] to the two [N, W] activations
//    the output tail reads (GLA: the scan output o and the gate g; Mamba2: y and z; Gated
//    DeltaNet: the scan output o and the gate g). It runs on all N rows: every position feeds
//    the recurrent state.
//  - the tail: per row, out [R, D] = tail(a [R, W], b [R, W]) (GLA: per-head norm, swish gate,
//    o_proj; Mamba2: gated norm, out_proj), on any R rows: all N, or rows the model gathered.
// The model decides which rows the tail runs on (output_rows.h: the last layer's labelled rows
// only); no mixer knows. Parameters are bound once into named pointers into the model's
// flat buffers; the activations of the last forward are kept for backward.
#include <memory>
#include <string>

#include "sim/core/backend.h"
#include "sim/core/config.h"
#include "sim/core/params.h"
#include "sim/model/arena.h"

namespace statex {

// One parameter tensor in the model's flat buffers: its values and its gradient.
struct ParamRef {
  float* w = nullptr;
  float* g = nullptr;
};

// Looks up a layer's tensors by name (relative to the mixer prefix) when a mixer is built.
struct MixerBinding {
  const ParamTable* table = nullptr;
  std::string prefix;       // e.g. "model.layers.0.attn."
  float* params = nullptr;  // model flat buffers (backend memory)
  float* grads = nullptr;
  ParamRef operator()(const std::string& name) const {
    const int64_t o = table->at(prefix + name).offset;
    return {params + o, grads + o};
  }
  // The first of `parts` tensors, after checking that they lie adjacent and in this order in the
  // flat buffer (tensor i is rows[i] x cols), as a stacked projection op needs
  // (param_layout.cpp lays them out so). Throws std::logic_error otherwise.
  ParamRef stacked(const char* const* names, const int* rows, int parts, int cols) const;
};

struct RunShape {
  int B = 0, T = 0;
  int N() const { return B * T; }
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  // The two activations the tail reads (x: the values of the last scan_forward, d: their
  // gradients, which scan_backward reads), and their width W.
  struct TailInputs {
    ActGrad* a;
    ActGrad* b;
    int width;
  };
  virtual TailInputs tail_inputs() = 0;

  // h [N, D] -> the tail inputs (all N rows). `h` must stay valid until scan_backward.
  virtual void scan_forward(const float* h, RunShape s) = 0;
  // out [R, D] = tail(a, b), a and b [R, W].
  virtual void tail_forward(float* out, const float* a, const float* b, int R) = 0;
  // da, db [R, W] (overwritten; old contents never read) from dout [R, D] and the a, b of the
  // last tail_forward on the same R rows; parameter gradients accumulate.
  virtual void tail_backward(float* da, float* db, const float* dout, const float* a,
                             const float* b, int R) = 0;
  // dh [N, D] (overwritten) from the gradients of the tail inputs (tail_inputs().a->d, b->d,
  // [N, W]); parameter gradients accumulate.
  virtual void scan_backward(float* dh, RunShape s) = 0;

  // Forward FLOPs per token (documented formula; used by bench).
  virtual double flops_per_token(int T) const = 0;
};

// Builds the mixer of `layer`; buffers are allocated for up to max_tokens rows.
std::unique_ptr<Mixer> make_mixer(const ModelConfig& cfg, int layer, Backend& be,
                                  const MixerBinding& bind, int max_tokens, int chunk);

}  // namespace statex
