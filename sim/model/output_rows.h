#pragma once
// Output rows of a mixer. The loss reads the last layer only at the labelled positions, so that
// layer's per-token tail (the mixer's output norm and projection, the residual add, the MLP and
// the final norm) runs on those M rows alone; the scan before it still runs on all N rows (every
// position feeds the state). Exact: rows that never reach the loss get zero gradient either way.
#include "sim/core/backend.h"
#include "sim/model/arena.h"

namespace statex {

struct OutputRows {
  const int* idx = nullptr;  // [M] distinct row indices into [N] (backend memory); null = all
  int M = 0;
  bool all() const { return idx == nullptr; }
  int count(int N) const { return all() ? N : M; }
};

// A mixer's two [N, W] inputs of its output tail (e.g. GLA's o and gate g), gathered at the
// output rows, and the way back: their [M, W] gradients scattered into zeroed [N, W] buffers.
class RowSubset {
 public:
  RowSubset(Backend& be, int width) : be_(be), arena_(be), W_(width) {}

  // a(), b() [M, W] = a_full[idx], b_full[idx]
  void gather(const OutputRows& r, const float* a_full, const float* b_full) {
    reserve(r.M);
    be_.gather_rows(a_, a_full, r.idx, r.M, W_);
    be_.gather_rows(b_, b_full, r.idx, r.M, W_);
  }
  // da_full, db_full [N, W] = 0 except rows idx, which get da(), db().
  void scatter(const OutputRows& r, float* da_full, float* db_full, int N) {
    for (auto [full, sub] : {std::pair{da_full, da_}, std::pair{db_full, db_}}) {
      be_.zero(full, size_t(N) * W_ * sizeof(float));
      be_.scatter_add_rows(full, sub, r.idx, r.M, W_);
    }
  }
  float* a() { return a_; }
  float* b() { return b_; }
  float* da() { return da_; }
  float* db() { return db_; }

 private:
  void reserve(int M) {  // grows with the largest label count seen (M <= N)
    if (M <= capacity_) return;
    arena_.release();
    capacity_ = M;
    const size_t n = size_t(M) * W_;
    a_ = arena_.floats(n);
    b_ = arena_.floats(n);
    da_ = arena_.floats(n);
    db_ = arena_.floats(n);
  }

  Backend& be_;
  Arena arena_;
  int W_, capacity_ = 0;
  float *a_ = nullptr, *b_ = nullptr, *da_ = nullptr, *db_ = nullptr;
};

}  // namespace statex
