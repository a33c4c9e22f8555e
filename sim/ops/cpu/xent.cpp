// Softmax cross-entropy over rows of logits [M, V] with targets [M].
// Stable log-softmax: with mx = max_j z_j and S = sum_j exp(z_j - mx),
//   probs = exp(z - mx) / S,  loss = log(S) - (z_target - mx).
// Rows are independent (OpenMP over rows); S is accumulated in double.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
// sum_j p[j] in double, over 8 independent lanes so that the compiler vectorises it (a single
// running double sum cannot be reordered, and Eigen's cast<double>().sum() ran scalar). The
// lane order only changes rounding at the double level.
double sum_in_double(const float* p, int n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) lane[k] += double(p[j + k]);
  double s = 0;
  for (; j < n; ++j) s += double(p[j]);
  for (int k = 0; k < 8; ++k) s += lane[k];
  return s;
}

void check_targets(const int* targets, int M, int V) {
  for (int i = 0; i < M; ++i)
    if (targets[i] < 0 || targets[i] >= V)
      throw std::out_of_range("xent: target " + std::to_string(targets[i]) + " at row " +
                              std::to_string(i) + " outside [0, " + std::to_string(V) + ")");
}
}  // namespace

void CpuBackend::xent_forward(float* losses, float* probs, int* pred, const float* logits,
                              const int* targets, int M, int V) {
  check_targets(targets, M, V);
  const bool parallel = (long long)M * V >= (1 << 14);
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < M; ++i) {
    const float* z = logits + (size_t)i * V;
    float* p = probs + (size_t)i * V;
    Eigen::Map<const Eigen::ArrayXf> zrow(z, V);
    // Vectorised max, then its first occurrence: the lowest index on ties. (With a NaN in the
    // row max may be NaN and not found; pred is then 0 and the loss NaN.)
    const float mx = zrow.maxCoeff();
    const int found = int(std::find(z, z + V, mx) - z);
    const int best = found < V ? found : 0;
    // Vectorised exp (Eigen packets); the sum of V terms in [0, 1] is accumulated in double (a
    // float sum moved the model's finite-difference gradient checks by ~10%: the loss must stay
    // smooth in the parameters to float precision).
    Eigen::Map<Eigen::ArrayXf> prow(p, V);
    prow = (zrow - mx).exp();
    const double sum = sum_in_double(p, V);
    prow *= float(1.0 / sum);
    losses[i] = float(std::log(sum) - double(z[targets[i]] - mx));
    if (pred) pred[i] = best;
  }
}

// dlogits (+)= (probs - onehot(target)) * dloss_scale; when overwriting, dlogits may be probs.
void CpuBackend::xent_backward(float* dlogits, const float* probs, const int* targets,
                               float dloss_scale, int M, int V, bool accumulate) {
  if (!dlogits) return;
  check_targets(targets, M, V);
  const bool parallel = (long long)M * V >= (1 << 14);
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < M; ++i) {
    float* d = dlogits + (size_t)i * V;
    const float* p = probs + (size_t)i * V;
    if (accumulate)
      for (int j = 0; j < V; ++j) d[j] += p[j] * dloss_scale;
    else
      for (int j = 0; j < V; ++j) d[j] = p[j] * dloss_scale;
    d[targets[i]] -= dloss_scale;
  }
}

}  // namespace statex
