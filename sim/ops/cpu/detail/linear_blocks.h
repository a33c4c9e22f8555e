// Row-block tiling shared by the CPU linear ops (linear.cpp, linear_stacked.cpp). Block
// boundaries are functions of the shapes only, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstddef>

namespace statex::linear_blocks {

constexpr int kMinTasks = 8;       // aim for at least this many tasks per op
constexpr int kMaxRowBlock = 256;  // rows of N per forward / dinp task
constexpr int kMinRowBlock = 16;
// Below this a fork/join costs more than it saves. It is also where Eigen would start to
// parallelise a product by itself (50k multiply-adds per thread), so above it we always split.
constexpr double kParallelMinFlops = 2e5;

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Rows of N per task: about N / kMinTasks, clamped; a function of N only.
inline int row_block(int N) {
  return std::clamp(ceil_div(N, kMinTasks), kMinRowBlock, kMaxRowBlock);
}

inline bool worth_parallel(int tasks, double flops) {
  return tasks > 1 && flops >= kParallelMinFlops;
}

// dst[e] += sum_k partial[k * total + e] for k = 0..chunks-1, in k order for every element, so
// the result does not depend on which thread made which partial (elements split across threads).
inline void add_partials_in_order(float* dst, const float* partial, int chunks, size_t total) {
#pragma omp parallel for schedule(static) if (total >= (1 << 15))
  for (long long e = 0; e < (long long)total; ++e) {
    float s = dst[e];
    for (int k = 0; k < chunks; ++k) s += partial[size_t(k) * total + e];
    dst[e] = s;
  }
}

}  // namespace statex::linear_blocks
