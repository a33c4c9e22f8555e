// Sum of squares (the global gradient norm) with Thrust, accumulated in double.
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/transform_reduce.h>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

struct SquareAsDouble {
  __host__ __device__ double operator()(float x) const { return double(x) * double(x); }
};

}  // namespace

double CudaBackend::sum_squares(const float* x, size_t n) {
  if (n == 0) return 0.0;
  thrust::device_ptr<const float> p(x);
  double s = thrust::transform_reduce(thrust::device, p, p + n, SquareAsDouble(), 0.0,
                                      thrust::plus<double>());
  CUDA_CHECK(cudaGetLastError());
  return s;
}

}  // namespace statex
