// Sum of squares (the global gradient norm before clipping) on the CPU. Contract:
// sim/core/ops.def.
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
constexpr long long kBlock = 1 << 15;  // elements per partial sum / per parallel task
}

// Sum of squares in double. Fixed-size blocks are summed in parallel and the block sums are
// added in block order, so the result is bit-identical for any thread count.
double CpuBackend::sum_squares(const float* x, size_t n) {
  const long long len = (long long)n;
  const long long blocks = (len + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (long long b = 0; b < blocks; ++b) {
    const long long end = (b + 1) * kBlock < len ? (b + 1) * kBlock : len;
    double s = 0;
    for (long long i = b * kBlock; i < end; ++i) s += double(x[i]) * double(x[i]);
    partial[b] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace statex
