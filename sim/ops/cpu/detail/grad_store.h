// Writing an input gradient under the backward ops' `accumulate` flag (sim/core/ops.def):
// dst += value, or dst = value without reading dst (it may hold NaN). Works for Eigen arrays,
// matrices, maps, blocks and noalias() wrappers.
#pragma once

namespace statex {

template <class Dst, class Expr>
inline void store_grad(Dst&& dst, const Expr& value, bool accumulate) {
  if (accumulate)
    dst += value;
  else
    dst = value;
}

}  // namespace statex
