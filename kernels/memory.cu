// CUDA backend: construction, device facts, memory, data movement (strided copy, row
// gather/scatter) and the two in-place vector ops. Also the factory functions declared in
// sim/core/backend.h, which exist here only when built with CUDA.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {

namespace cuda {

namespace {
int g_sync_mode = -1;  // -1: not read yet; 0/1 from STATEX_CUDA_SYNC or set_sync_after_launch
}

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ") in " + what + " at " + file + ":" +
                           std::to_string(line));
}

bool sync_after_launch() {
  if (g_sync_mode < 0) {
    const char* e = std::getenv("STATEX_CUDA_SYNC");
    g_sync_mode = (e && e[0] == '1') ? 1 : 0;
  }
  return g_sync_mode == 1;
}

void set_sync_after_launch(bool on) { g_sync_mode = on ? 1 : 0; }

}  // namespace cuda

using namespace cuda;

bool cuda_available(std::string* why_not) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0) {
    if (why_not) {
      *why_not = err != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(err)
                                    : std::string("no CUDA device visible");
    }
    cudaGetLastError();  // clear the (non-sticky) error
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_backend() {
  std::string why;
  if (!cuda_available(&why)) throw std::runtime_error("--device cuda: " + why);
  return std::make_unique<CudaBackend>();
}

CudaBackend::CudaBackend() {
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_));
  CUDA_CHECK(
      cudaDeviceGetAttribute(&max_smem_optin_, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_));
}

CudaBackend::~CudaBackend() {
  for (int i = 0; i < kSlots; ++i) {
    if (ws_[i]) cudaFree(ws_[i]);  // no throw from a destructor
  }
}

std::string CudaBackend::device_name() const {
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(sm_count_) + " SMs)";
}

double CudaBackend::nominal_fp32_tflops() const {
  int clock_khz = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device_));
  // 128 FP32 lanes per SM on sm_80+/sm_90 consumer/datacenter parts (H100: 128), FMA = 2 flop.
  return double(sm_count_) * 128.0 * 2.0 * double(clock_khz) * 1e3 / 1e12;
}

double CudaBackend::nominal_dram_gbps() const {
  int mem_khz = 0, bus_bits = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device_));
  CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device_));
  return 2.0 * double(mem_khz) * 1e3 * (bus_bits / 8.0) / 1e9;
}

float* CudaBackend::workspace(int slot, size_t floats) {
  if (slot < 0 || slot >= kSlots) throw std::logic_error("CudaBackend::workspace: bad slot");
  if (floats == 0) floats = 1;
  if (ws_size_[slot] < floats) {
    if (ws_[slot]) CUDA_CHECK(cudaFree(ws_[slot]));  // cudaFree waits for pending work
    ws_[slot] = nullptr;
    ws_size_[slot] = 0;
    CUDA_CHECK(cudaMalloc(&ws_[slot], floats * sizeof(float)));
    ws_size_[slot] = floats;
  }
  return ws_[slot];
}

void CudaBackend::set_sync_after_launch(bool on) { cuda::set_sync_after_launch(on); }

std::string CudaBackend::name() const { return "cuda"; }

void CudaBackend::synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

void* CudaBackend::malloc_bytes(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  return p;
}

void CudaBackend::free_bytes(void* p) {
  if (p) CUDA_CHECK(cudaFree(p));
}

void CudaBackend::zero(void* p, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemset(p, 0, bytes));
}

// cudaMemcpyDefault infers the direction from the pointers (unified addressing), so these also
// work device-to-device.
void CudaBackend::to_device(void* dst, const void* host_src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyDefault));
}

void CudaBackend::to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDefault));
}

namespace {

// dst[r, c] (+)= src[r, c]; one thread per element, 2-D grid-stride.
__global__ void strided_copy_kernel(float* dst, int dst_ld, const float* src, int src_ld,
                                    int rows, int cols, bool accumulate) {
  size_t n = size_t(rows) * cols;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    size_t r = i / cols, c = i % cols;
    float v = src[r * src_ld + c];
    float* d = dst + r * dst_ld + c;
    *d = accumulate ? *d + v : v;
  }
}

// out[i, :] = inp[idx[i], :]
__global__ void gather_rows_kernel(float* out, const float* inp, const int* idx, int M, int C) {
  size_t n = size_t(M) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    size_t r = i / C, c = i % C;
    out[i] = inp[size_t(idx[r]) * C + c];
  }
}

// dinp[idx[i], :] += dout[i, :]   (idx distinct, so no two threads hit one element)
__global__ void scatter_add_rows_kernel(float* dinp, const float* dout, const int* idx, int M,
                                        int C) {
  size_t n = size_t(M) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    size_t r = i / C, c = i % C;
    dinp[size_t(idx[r]) * C + c] += dout[i];
  }
}

__global__ void add_inplace_kernel(float* y, const float* x, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

__global__ void scale_inplace_kernel(float* y, float a, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    y[i] *= a;
}

}  // namespace

void CudaBackend::strided_copy(float* dst, int dst_ld, const float* src, int src_ld, int rows,
                               int cols, bool accumulate) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  strided_copy_kernel<<<blocks_for(n), kThreads>>>(dst, dst_ld, src, src_ld, rows, cols,
                                                   accumulate);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::gather_rows(float* out, const float* inp, const int* idx, int M, int C) {
  size_t n = size_t(M) * C;
  if (n == 0) return;
  gather_rows_kernel<<<blocks_for(n), kThreads>>>(out, inp, idx, M, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::scatter_add_rows(float* dinp, const float* dout, const int* idx, int M, int C) {
  size_t n = size_t(M) * C;
  if (n == 0 || !dinp) return;
  scatter_add_rows_kernel<<<blocks_for(n), kThreads>>>(dinp, dout, idx, M, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::add_inplace(float* y, const float* x, size_t n) {
  if (n == 0) return;
  add_inplace_kernel<<<blocks_for(n), kThreads>>>(y, x, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::scale_inplace(float* y, float a, size_t n) {
  if (n == 0) return;
  scale_inplace_kernel<<<blocks_for(n), kThreads>>>(y, a, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
