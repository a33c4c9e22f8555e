#pragma once
// Shared by the Mamba2 elementwise ops (softplus_bias, ssd_dskip, gated_rmsnorm): Eigen views of
// row blocks, and the fixed row blocks their parameter-gradient reductions use.
//
// Parameter gradients (ddt_bias, dD, dweight) are reductions over all N rows. To keep results
// independent of the thread count, rows are cut into fixed blocks of kRowsPerBlock; each block's
// partial sum (float within the block) is computed by one thread and the partials are added in
// double, in block order.
#include <Eigen/Core>
#include <cstddef>

namespace statex::row_blocks {

constexpr int kRowsPerBlock = 256;
// Below this many elements a parallel region costs more than it saves.
constexpr size_t kMinParallelWork = size_t(1) << 15;

using Arr = Eigen::Map<Eigen::ArrayXf>;
using ConstArr = Eigen::Map<const Eigen::ArrayXf>;
using RowArrXX = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowBlock = Eigen::Map<RowArrXX>;  // [n, H] rows of an [N, H] tensor
using ConstRowBlock = Eigen::Map<const RowArrXX>;
using ConstRowVec = Eigen::Map<const Eigen::Array<float, 1, Eigen::Dynamic>>;

// Whether a pass over an [N, C] tensor is big enough to run its row blocks in parallel.
inline bool worth_parallel(int N, int C) { return size_t(N) * C >= kMinParallelWork; }

}  // namespace statex::row_blocks
