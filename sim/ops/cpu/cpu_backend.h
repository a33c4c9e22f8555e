#pragma once
// CPU reference backend: Eigen + OpenMP. Each op's body lives in sim/ops/cpu/<stem>.cpp
// (the op's stem in sim/core/ops.def).
// Threading: OpenMP over independent rows / (batch, head) pairs; results do not depend on the
// thread count except where a reduction over rows is split across threads (documented per op).
#include "sim/core/backend.h"

namespace statex {

// Not final: tests derive from it to inject a known error and check that comparisons catch it.
class CpuBackend : public Backend {
 public:
  std::string name() const override;
  void* malloc_bytes(size_t bytes) override;
  void free_bytes(void* p) override;
  void to_device(void* dst, const void* host_src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
  // Every op of sim/core/ops.def, defined in sim/ops/cpu/<stem>.cpp.
#define STATEX_OP(stem, name, ret, params, args) ret name params override;
#include "sim/core/ops.def"
};

}  // namespace statex
