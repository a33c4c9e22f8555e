// Elementwise activations: SiLU, scaled log-sigmoid (GLA forget gate) and SwiGLU.
// Each op splits [0, n) into fixed chunks run by OpenMP threads and evaluates a chunk with
// Eigen arrays (vectorised exp/log1p). Elementwise results never depend on the thread count.
//
// Numerical stability: sigmoid is Eigen's logistic(), a vectorised rational interpolant within a
// couple of ulps that never overflows (exactly 1 above ~15.7, exp(x) below -9); the log-sigmoid
// is written in terms of e = exp(-|x|) <= 1, so nothing overflows for large |x|:
//   logsigmoid(x) = min(x, 0) - log1p(e)
//   d logsigmoid / dx = sigmoid(-x)
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"

namespace statex {

namespace {

using Arr = Eigen::ArrayXf;
using ArrMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrMap = Eigen::Map<const Eigen::ArrayXf>;

constexpr std::ptrdiff_t kChunk = 8192;  // elements per task: big enough to amortise threads

// Calls body(begin, count) for fixed chunks of [0, n), in parallel when there is more than one.
template <class Body>
void for_each_chunk(size_t n, Body body) {
  const std::ptrdiff_t len = (std::ptrdiff_t)n;
  const std::ptrdiff_t chunks = (len + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t c = 0; c < chunks; ++c) {
    const std::ptrdiff_t begin = c * kChunk;
    body(begin, std::min(kChunk, len - begin));
  }
}

}  // namespace

// out = x * sigmoid(x)
void CpuBackend::silu_forward(float* out, const float* inp, size_t n) {
  for_each_chunk(n, [&](std::ptrdiff_t b, std::ptrdiff_t k) {
    ConstArrMap x(inp + b, k);
    ArrMap(out + b, k) = x * x.logistic();
  });
}

// dinp (+)= dout * s (1 + x (1 - s)),  s = sigmoid(x)
void CpuBackend::silu_backward(float* dinp, const float* dout, const float* inp, size_t n,
                               bool accumulate) {
  if (!dinp) return;
  for_each_chunk(n, [&](std::ptrdiff_t b, std::ptrdiff_t k) {
    ConstArrMap x(inp + b, k);
    Arr s = x.logistic();
    store_grad(ArrMap(dinp + b, k), ConstArrMap(dout + b, k) * s * (1.f + x * (1.f - s)),
               accumulate);
  });
}

// out = scale * logsigmoid(x)
void CpuBackend::logsigmoid_forward(float* out, const float* inp, float scale, size_t n) {
  for_each_chunk(n, [&](std::ptrdiff_t b, std::ptrdiff_t k) {
    ConstArrMap x(inp + b, k);
    Arr e = (-x.abs()).exp();
    ArrMap(out + b, k) = scale * (x.min(0.f) - e.log1p());
  });
}

// dinp (+)= dout * scale * sigmoid(-x)
void CpuBackend::logsigmoid_backward(float* dinp, const float* dout, const float* inp, float scale,
                                     size_t n, bool accumulate) {
  if (!dinp) return;
  for_each_chunk(n, [&](std::ptrdiff_t b, std::ptrdiff_t k) {
    // sigmoid(-x) through logistic(), which is stable for any x (see the header); one
    // vectorised pass (Eigen 3.4 does not vectorise select(), which the e / (1 + e) form needed).
    store_grad(ArrMap(dinp + b, k),
               scale * ConstArrMap(dout + b, k) * (-ConstArrMap(inp + b, k)).logistic(),
               accumulate);
  });
}

// out = silu(gate) * up
void CpuBackend::swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  for_each_chunk(n, [&](std::ptrdiff_t b, std::ptrdiff_t k) {
    ConstArrMap g(gate + b, k);
    ArrMap(out + b, k) = g * g.logistic() * ConstArrMap(up + b, k);
  });
}

// dgate (+)= dout * up * silu'(gate), dup (+)= dout * silu(gate)
void CpuBackend::swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                                 const float* up, size_t n, bool accumulate) {
  if (!dgate && !dup) return;
  for_each_chunk(n, [&](std::ptrdiff_t b, std::ptrdiff_t k) {
    ConstArrMap g(gate + b, k);
    ConstArrMap dy(dout + b, k);
    Arr s = g.logistic();
    if (dgate)
      store_grad(ArrMap(dgate + b, k), dy * ConstArrMap(up + b, k) * s * (1.f + g * (1.f - s)),
                 accumulate);
    if (dup) store_grad(ArrMap(dup + b, k), dy * g * s, accumulate);
  });
}

}  // namespace statex
