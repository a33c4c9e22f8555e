#pragma once
// Output rows of a layer. The loss reads the last layer only at the labelled positions, so that
// layer's per-token tail (the mixer's output norm and projection, the residual add, the MLP and
// the final norm) runs on those M rows alone; the mixer's scan before it still runs on all N
// rows (every position feeds the state). Exact: rows that never reach the loss get zero gradient
// either way. The model does the gathering (TailRows, one per layer); the mixers never see it.
#include "sim/core/backend.h"
#include "sim/model/arena.h"

namespace statex {

struct OutputRows {
  const int* idx = nullptr;  // [M] distinct row indices into [N] (backend memory); null = all
  int M = 0;
  bool all() const { return idx == nullptr; }
  int count(int N) const { return all() ? N : M; }
};

// A mixer's output tail reads two [N, W] activations a, b (Mixer::tail_inputs: GLA's o and gate
// g, Mamba2's y and z). When only some rows are output, it reads them gathered at those rows,
// and its gradients come back [M, W] and are scattered into zeroed [N, W] gradients of a and b.
// The tail's code is the same either way: it works on the buffers this hands out, `rows` rows.
class TailRows {
 public:
  struct Buffers {
    const float *a, *b;  // [rows, W] inputs of the tail
    float *da, *db;      // [rows, W] their gradients
    int rows;
  };

  TailRows(Backend& be, int width, ActGrad& a, ActGrad& b)
      : be_(be), arena_(be), W_(width), a_(a), b_(b) {}

  // Forward: the inputs at the output rows (gathered when a subset).
  Buffers inputs(const OutputRows& r, int N) {
    if (r.all()) return full(N);
    reserve(r.M);
    be_.gather_rows(sa_, a_.x, r.idx, r.M, W_);
    be_.gather_rows(sb_, b_.x, r.idx, r.M, W_);
    return sub(r.M);
  }
  // Backward: the buffers of the last inputs() call with the same rows.
  Buffers grads(const OutputRows& r, int N) const { return r.all() ? full(N) : sub(r.M); }
  // After the tail's backward: a subset's gradients into a.d, b.d [N, W], zero off its rows.
  void scatter_grads(const OutputRows& r, int N) {
    if (r.all()) return;
    for (auto [full_d, sub_d] : {std::pair{a_.d, sda_}, std::pair{b_.d, sdb_}}) {
      be_.zero(full_d, size_t(N) * W_ * sizeof(float));
      be_.scatter_add_rows(full_d, sub_d, r.idx, r.M, W_);
    }
  }

 private:
  Buffers full(int N) const { return {a_.x, b_.x, a_.d, b_.d, N}; }
  Buffers sub(int M) const { return {sa_, sb_, sda_, sdb_, M}; }
  void reserve(int M) {  // grows with the largest label count seen (M <= N)
    if (M <= capacity_) return;
    arena_.release();
    capacity_ = M;
    const size_t n = size_t(M) * W_;
    sa_ = arena_.floats(n);
    sb_ = arena_.floats(n);
    sda_ = arena_.floats(n);
    sdb_ = arena_.floats(n);
  }

  Backend& be_;
  Arena arena_;
  int W_, capacity_ = 0;
  ActGrad &a_, &b_;
  float *sa_ = nullptr, *sb_ = nullptr, *sda_ = nullptr, *sdb_ = nullptr;  // [capacity, W]
};

}  // namespace statex
