#pragma once
// Error checking for every CUDA runtime call and kernel launch. Failures throw
// std::runtime_error naming the file and line, so `statex verify` can report which op broke.
//
// Kernel launches are asynchronous: a fault inside a kernel surfaces at a later call. Set the
// environment variable STATEX_CUDA_SYNC=1 (statex verify does) to synchronise after every
// launch, which pins a fault to the launch that caused it.
#include <cuda_runtime.h>

#include <string>

namespace statex::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);
bool sync_after_launch();  // STATEX_CUDA_SYNC=1, or forced by set_sync_after_launch
void set_sync_after_launch(bool on);

inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, what, file, line);
}

inline void check_launch(const char* file, int line) {
  check(cudaGetLastError(), "kernel launch", file, line);
  if (sync_after_launch()) check(cudaDeviceSynchronize(), "kernel execution", file, line);
}

}  // namespace statex::cuda

#define CUDA_CHECK(call) ::statex::cuda::check((call), #call, __FILE__, __LINE__)
// Use right after every <<<...>>> launch.
#define CUDA_CHECK_LAUNCH() ::statex::cuda::check_launch(__FILE__, __LINE__)
