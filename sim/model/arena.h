#pragma once
// Owns backend memory for a group of buffers (activations, gradients, scratch); frees it all at
// once. Buffers are carved from separate backend allocations so each stays aligned.
#include <cstddef>
#include <vector>

#include "sim/core/backend.h"

namespace statex {

class Arena {
 public:
  explicit Arena(Backend& be) : be_(&be) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() { release(); }

  float* floats(size_t n) { return static_cast<float*>(bytes(n * sizeof(float))); }
  int* ints(size_t n) { return static_cast<int*>(bytes(n * sizeof(int))); }
  void* bytes(size_t b) {
    void* p = be_->malloc_bytes(b == 0 ? 4 : b);
    be_->zero(p, b == 0 ? 4 : b);
    ptrs_.push_back(p);
    return p;
  }
  void release() {
    for (void* p : ptrs_) be_->free_bytes(p);
    ptrs_.clear();
  }

 private:
  Backend* be_;
  std::vector<void*> ptrs_;
};

// An activation buffer and its gradient buffer, both [max_tokens, width].
struct ActGrad {
  float* x = nullptr;
  float* d = nullptr;
  size_t width = 0;  // floats per token
  void alloc(Arena& a, size_t tokens, size_t w) {
    width = w;
    x = a.floats(tokens * w);
    d = a.floats(tokens * w);
  }
  // Zeroes the gradient of the first `tokens` rows.
  void zero_grad(Backend& be, size_t tokens) const {
    if (width) be.zero(d, tokens * width * sizeof(float));
  }
};

}  // namespace statex
