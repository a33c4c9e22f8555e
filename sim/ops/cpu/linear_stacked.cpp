// Stacked projections: parts i = 0..parts-1 of one input, weight [W, C] with W = sum ocs.
// Per block of rows of N, one serial GEMM over the whole stacked width instead of one per part:
//   forward: ybuf [n, W] = x_blk [n, C] · weight^T, then ybuf's column slices are copied to
//            outs[i] while still in cache;
//   dinp   : the parts' gradients are gathered into dybuf [n, W] (column slices), then
//            dinp_blk [n, C] (+)= dybuf · weight, one product of depth W.
// Why: the GLA mixer's five projections of h (q, k, v, g, gk_proj.0) otherwise read h from
// memory five times and write dh five times, each as a product of depth 16..128 where
// OpenBLAS runs below its deep-product speed (docs/performance.md).
//   dweight: the same gather per slice of N, dweight [W, C] += dybuf^T · x_slice (part i's rows
//            of the stacked gradient are exactly that part's [ocs[i], C] weight gradient).
// Blocks depend on N only, so results do not depend on the thread count.
#include <cstring>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/gemm.h"
#include "sim/ops/cpu/detail/linear_blocks.h"

namespace statex {

using namespace linear_blocks;

namespace {

// buf [n, W] = the parts' rows [r0, r0+n) side by side (part i in columns [col_i, col_i+ocs[i])).
void gather_columns(float* buf, int W, const float* const* parts_data, const int* ocs, int parts,
                    int r0, int n) {
  for (int i = 0, col = 0; i < parts; col += ocs[i], ++i)
    for (int r = 0; r < n; ++r)
      std::memcpy(buf + size_t(r) * W + col, parts_data[i] + size_t(r0 + r) * ocs[i],
                  sizeof(float) * ocs[i]);
}

// The inverse: the parts' rows [r0, r0+n) = their column slices of buf [n, W].
void scatter_columns(float* const* parts_data, const int* ocs, int parts, const float* buf, int W,
                     int r0, int n) {
  for (int i = 0, col = 0; i < parts; col += ocs[i], ++i)
    for (int r = 0; r < n; ++r)
      std::memcpy(parts_data[i] + size_t(r0 + r) * ocs[i], buf + size_t(r) * W + col,
                  sizeof(float) * ocs[i]);
}

// body(r0, n, buf) for blocks of row_block(N) rows of N, in parallel when worth it; buf is a
// per-thread [row block, W] scratch.
template <class Body>
void for_row_blocks_with_buffer(int N, int W, double flops, Body body) {
  const int rb = row_block(N), blocks = ceil_div(N, rb);
#pragma omp parallel if (worth_parallel(blocks, flops))
  {
    std::vector<float> buf(size_t(rb) * W);
#pragma omp for schedule(dynamic, 1)
    for (int blk = 0; blk < blocks; ++blk) body(blk * rb, std::min(rb, N - blk * rb), buf.data());
  }
}

constexpr int kDepthSlice = 512;  // rows of N per gathered dweight product (dybuf fits in L2)

// dweight [W, C] += dy_all^T · inp, dy_all [N, W] the parts' gradients side by side. The depth
// N is cut into kMinTasks groups of whole slices; each group gathers a slice of dy_all into
// dybuf [slice, W] and adds dybuf^T · inp_slice into its own partial [W, C]; the partials are
// then added into dweight in group order (so the result does not depend on the thread count).
void stacked_dweight(float* dweight, const float* const* douts, const int* ocs, int parts,
                     const float* inp, int N, int C) {
  const int W = stacked_width(ocs, parts);
  const int group_rows = ceil_div(ceil_div(N, kMinTasks), kDepthSlice) * kDepthSlice;
  const int groups = ceil_div(N, group_rows);
  const size_t wc = size_t(W) * C;
  std::vector<float> partial(size_t(groups) * wc);  // [groups, W, C]
  const bool parallel = worth_parallel(groups, 2.0 * N * C * W);
#pragma omp parallel if (parallel)
  {
    std::vector<float> dybuf(size_t(kDepthSlice) * W);  // [kDepthSlice, W]
#pragma omp for schedule(dynamic, 1)
    for (int g = 0; g < groups; ++g) {
      const int end = std::min(N, (g + 1) * group_rows);
      for (int k0 = g * group_rows; k0 < end; k0 += kDepthSlice) {
        const int kn = std::min(kDepthSlice, end - k0);
        gather_columns(dybuf.data(), W, douts, ocs, parts, k0, kn);
        // partial[g] [W, C] (+)= dybuf^T [W, kn] · inp[k0:k0+kn] [kn, C]
        gemm_serial(true, false, W, C, kn, dybuf.data(), W, inp + size_t(k0) * C, C,
                    k0 == g * group_rows ? 0.0f : 1.0f, partial.data() + g * wc, C);
      }
    }
  }
  add_partials_in_order(dweight, partial.data(), groups, wc);
}

}  // namespace

void CpuBackend::linear_stacked_forward(float* const* outs, const int* ocs, int parts,
                                        const float* inp, const float* weight, int N, int C) {
  const int W = stacked_width(ocs, parts);
  // Per block: ybuf [n, W] = x_blk [n, C] · weight^T, then its column slices to the parts.
  for_row_blocks_with_buffer(N, W, 2.0 * N * C * W, [&](int r0, int n, float* ybuf) {
    gemm_serial(false, true, n, W, C, inp + size_t(r0) * C, C, weight, C, 0.0f, ybuf, W);
    scatter_columns(outs, ocs, parts, ybuf, W, r0, n);
  });
}

void CpuBackend::linear_stacked_backward(float* dinp, float* dweight, const float* const* douts,
                                         const int* ocs, int parts, const float* inp,
                                         const float* weight, int N, int C, bool accumulate) {
  const int W = stacked_width(ocs, parts);
  if (dinp)
    for_row_blocks_with_buffer(N, W, 2.0 * N * C * W, [&](int r0, int n, float* dybuf) {
      gather_columns(dybuf, W, douts, ocs, parts, r0, n);
      // dinp[r0:r0+n] [n, C] (+)= dybuf [n, W] · weight [W, C]
      gemm_serial(false, false, n, C, W, dybuf, W, weight, C, accumulate ? 1.0f : 0.0f,
                  dinp + size_t(r0) * C, C);
    });
  if (dweight) stacked_dweight(dweight, douts, ocs, parts, inp, N, C);
}

}  // namespace statex
