#pragma once
// Deterministic passes over fixed blocks of rows, with optional column reductions: each block
// is handled by one thread and leaves its own partial column sums; the partials are then added
// in block order, so the result does not depend on the thread count.
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <vector>

namespace statex {

// body(r0, n) for the fixed blocks [r0, r0 + n) of `rows_per_block` rows of [0, N); blocks run in
// parallel when `parallel` and there is more than one.
template <class Body>
void for_row_blocks(int N, int rows_per_block, bool parallel, Body body) {
  const int nblocks = (N + rows_per_block - 1) / rows_per_block;
#pragma omp parallel for schedule(static) if (parallel && nblocks > 1)
  for (int blk = 0; blk < nblocks; ++blk) {
    const int r0 = blk * rows_per_block;
    body(r0, std::min(rows_per_block, N - r0));
  }
}

// As for_row_blocks, and out[c] += the column sums the blocks leave: body(r0, n, sum) gets
// `sum`, C float zeros, to fill with its block's sums (float within a block), or nullptr when
// `out` is nullptr. The block sums are added into out in double, in block order.
template <class Body>
void for_row_blocks_summing(float* out, int C, int N, int rows_per_block, bool parallel,
                            Body body) {
  const int nblocks = (N + rows_per_block - 1) / rows_per_block;
  std::vector<double> partial(out ? size_t(nblocks) * C : 0);  // [nblocks, C]
  for_row_blocks(N, rows_per_block, parallel, [&](int r0, int n) {
    Eigen::ArrayXf sum = Eigen::ArrayXf::Zero(out ? C : 0);
    body(r0, n, out ? &sum : nullptr);
    if (out)
      Eigen::Map<Eigen::ArrayXd>(&partial[size_t(r0 / rows_per_block) * C], C) =
          sum.cast<double>();
  });
  if (!out) return;
  for (int c = 0; c < C; ++c) {
    double s = 0;
    for (int b = 0; b < nblocks; ++b) s += partial[size_t(b) * C + c];
    out[c] += float(s);
  }
}

}  // namespace statex
