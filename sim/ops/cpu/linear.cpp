// Linear layer: out [N, OC] = inp [N, C] · weight [OC, C]^T + bias [OC].
//
// Threading. The products are serial GEMMs (gemm_serial: OpenBLAS, or Eigen without it), and we
// split the work into tasks ourselves instead of using a library's internal threading: Eigen's
// OpenMP GEMM synchronises its threads several times per product (spin-waiting on each other's
// packed panels) and collapses when the cores are shared (measured 10-50x slower than serial on
// a loaded 2-core machine). Here each task is an independent serial GEMM on a fixed block, with
// one join per op. Block boundaries depend only on the shapes, so every
// result is bit-identical for any thread count.
//   forward       : blocks of rows of N; a wide output also in blocks of columns of OC.
//   dinp          : blocks of rows of N.
//   dweight       : a deep product (N >= 2 kDeepChunk) is cut into depth chunks of kDeepChunk
//                   rows, each a product over all of OC (split in a few row blocks only when
//                   that gives too few tasks); their partial products are added in chunk
//                   order. OpenBLAS runs a dweight product 20-30% faster per flop as one wide
//                   product over a few thousand rows than as 64-row blocks over the whole depth
//                   (docs/performance.md). Shallow products keep 64-row blocks of OC, with the
//                   depth cut into chunks when that gives too few tasks.
//   dbias         : per-row-block partial column sums, added in block order.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/gemm.h"
#include "sim/ops/cpu/detail/linear_blocks.h"

namespace statex {

namespace {
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<Mat>;
using ConstMatMap = Eigen::Map<const Mat>;
using RowVec = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using RowVecMap = Eigen::Map<RowVec>;
using ConstRowVecMap = Eigen::Map<const RowVec>;

using namespace linear_blocks;

constexpr int kOcBlock = 64;         // rows of dweight per task (at least)
constexpr int kMaxOcBlock = 512;     // rows of dweight per task (at most)
constexpr int kDepthChunk = 512;     // rows of N per dweight partial product (split depth)
constexpr int kDeepChunk = 4096;     // rows of N per dweight partial product of a deep product
// Forward of a wide output (OC > 2 kWideOcTile, the LM head): tiles of up to kWideRowBlock rows
// x kWideOcTile columns. A [128 rows, 8192] tile ran ~20% slower per flop in OpenBLAS than
// [512, 1024] ones (docs/performance.md).
constexpr int kWideOcTile = 1024;
constexpr int kWideRowBlock = 512;
}  // namespace

void CpuBackend::linear_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int N, int C, int OC) {
  MatMap y(out, N, OC);
  // Tiles: rows of N x columns of OC. A wide output (the LM head) is cut into kWideOcTile
  // columns with up to kWideRowBlock rows per tile; otherwise one column tile.
  const bool wide = OC > 2 * kWideOcTile;
  const int rb = wide ? std::min(kWideRowBlock, N) : row_block(N), row_blocks = ceil_div(N, rb);
  const int ocb = wide ? kWideOcTile : OC, oc_blocks = ceil_div(OC, ocb);
  const int tasks = row_blocks * oc_blocks;
  const bool parallel = worth_parallel(tasks, 2.0 * N * C * OC);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int t = 0; t < tasks; ++t) {
    const int r0 = (t / oc_blocks) * rb, n = std::min(rb, N - r0);
    const int o0 = (t % oc_blocks) * ocb, on = std::min(ocb, OC - o0);
    // y[r0:r0+n, o0:o0+on] [n, on] = x[r0:r0+n] [n, C] · w[o0:o0+on]^T [C, on]
    gemm_serial(false, true, n, on, C, inp + (size_t)r0 * C, C, weight + (size_t)o0 * C, C, 0.0f,
                out + (size_t)r0 * OC + o0, OC);
    if (bias) y.block(r0, o0, n, on).rowwise() += ConstRowVecMap(bias + o0, on);
  }
}

// dinp [N, C] (+)= dout · weight;  dweight [OC, C] += dout^T · inp;  dbias [OC] += sum_rows dout.
// (beta = 0 for an overwritten dinp: BLAS and the Eigen fallback then never read it.)
void CpuBackend::linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int N, int C, int OC,
                                 bool accumulate) {
  ConstMatMap dy(dout, N, OC);
  const double gemm_flops = 2.0 * N * C * OC;

  // ---- dinp and dbias: blocks of rows of N ----
  if (dinp || dbias) {
    const int rb = row_block(N), blocks = ceil_div(N, rb);
    std::vector<float> db_partial(dbias ? (size_t)blocks * OC : 0);  // [blocks, OC]
    const bool parallel = worth_parallel(blocks, dinp ? gemm_flops : double(N) * OC);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int blk = 0; blk < blocks; ++blk) {
      const int r0 = blk * rb, n = std::min(rb, N - r0);
      // dinp[r0:r0+n] [n, C] (+)= dy[r0:r0+n] [n, OC] · w [OC, C]
      if (dinp)
        gemm_serial(false, false, n, C, OC, dout + (size_t)r0 * OC, OC, weight, C,
                    accumulate ? 1.0f : 0.0f, dinp + (size_t)r0 * C, C);
      if (dbias) {
        RowVecMap acc(db_partial.data() + (size_t)blk * OC, OC);
        acc = dy.row(r0);
        for (int i = r0 + 1; i < r0 + n; ++i) acc += dy.row(i);
      }
    }
    if (dbias) {
      RowVecMap db(dbias, OC);
      for (int blk = 0; blk < blocks; ++blk)
        db += ConstRowVecMap(db_partial.data() + (size_t)blk * OC, OC);
    }
  }

  // ---- dweight: tiles (rows of OC) x (chunks of the depth N) ----
  if (dweight) {
    // Task tiling, a function of the shapes only (so results do not depend on the thread count).
    int ocb, depth_chunks;
    if (N >= 2 * kDeepChunk) {
      depth_chunks = ceil_div(N, kDeepChunk);
      const int blocks = std::max(1, ceil_div(kMinTasks, depth_chunks));
      ocb = std::max(16, (ceil_div(OC, blocks) + 15) / 16 * 16);
    } else {
      // Each task packs all of inp[:N]; a wide OC (the LM head) gets wider blocks so that it is
      // packed ~2 kMinTasks times rather than OC / 64 times.
      ocb = std::clamp((ceil_div(OC, 2 * kMinTasks) + kOcBlock - 1) / kOcBlock * kOcBlock, kOcBlock,
                       kMaxOcBlock);
      const int blocks = ceil_div(OC, ocb);
      depth_chunks =
          blocks >= kMinTasks ? 1 : std::min(ceil_div(N, kDepthChunk), ceil_div(kMinTasks, blocks));
    }
    const int oc_blocks = ceil_div(OC, ocb);
    const int dc = ceil_div(N, depth_chunks);
    const int tasks = oc_blocks * depth_chunks;
    // partial[k] [OC, C] holds chunk k's product when the depth is split.
    std::vector<float> partial(depth_chunks > 1 ? (size_t)depth_chunks * OC * C : 0);
    const bool parallel = worth_parallel(tasks, gemm_flops);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int t = 0; t < tasks; ++t) {
      const int ob = t % oc_blocks, k = t / oc_blocks;
      const int o0 = ob * ocb, on = std::min(ocb, OC - o0);
      const int k0 = k * dc, kn = std::min(dc, N - k0);
      if (kn <= 0) continue;
      // [on, C] = dy[k0:k0+kn, o0:o0+on]^T [on, kn] · x[k0:k0+kn] [kn, C], added into dweight
      // directly, or stored as chunk k's partial product when the depth is split.
      float* dst = depth_chunks == 1 ? dweight : partial.data() + (size_t)k * OC * C;
      gemm_serial(true, false, on, C, kn, dout + (size_t)k0 * OC + o0, OC, inp + (size_t)k0 * C,
                  C, depth_chunks == 1 ? 1.0f : 0.0f, dst + (size_t)o0 * C, C);
    }
    if (depth_chunks > 1)
      add_partials_in_order(dweight, partial.data(), depth_chunks, size_t(OC) * C);
  }
}

}  // namespace statex
