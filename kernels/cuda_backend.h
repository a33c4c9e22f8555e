#pragma once
// CUDA backend: hand-written kernels; each op's body lives in kernels/<stem>.cu (the op's
// stem in sim/core/ops.def).
#include "sim/core/backend.h"

namespace statex {

class CudaBackend final : public Backend {
 public:
  CudaBackend();  // selects device 0; throws when none is usable
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  // Device facts for benchmarks (from cudaDeviceGetAttribute; nominal peaks, not measured).
  std::string device_name() const;
  double nominal_fp32_tflops() const;  // SMs * 128 FP32 lanes * 2 flop * boost clock (sm_90)
  double nominal_dram_gbps() const;    // 2 * memory clock * bus width (DDR)
  // Measured (kernels/peak_probe.cu, ~1 s): an FMA loop at full occupancy, and a 1 GiB float4
  // copy counted as read + write.
  double measured_fp32_tflops();
  double measured_dram_gbps();
  int max_smem_optin() const { return max_smem_optin_; }
  int sm_count() const { return sm_count_; }
  // Debug aid: synchronise and check after every kernel launch (pins an asynchronous fault on
  // the launch that caused it). Also on when the environment has STATEX_CUDA_SYNC=1.
  static void set_sync_after_launch(bool on);

  std::string name() const override;
  void synchronize() override;
  void* malloc_bytes(size_t bytes) override;
  void free_bytes(void* p) override;
  void to_device(void* dst, const void* host_src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
  // Every op of sim/core/ops.def, defined in kernels/<stem>.cu.
#define STATEX_OP(stem, name, ret, params, args) ret name params override;
#include "sim/core/ops.def"

  // Grow-only device workspace, one buffer per slot (ops that need several temporaries use
  // distinct slots). Contents are undefined; valid until the next call with the same slot.
  // Stream-ordered reuse is safe: all ops run on the default stream. Slots in use: 0-2 GLA,
  // 3-7 SSD, 8 split-K GEMM, 9 column_sum partials, 10 conv1d_silu_backward's dpre,
  // 11 attention_backward's Dv (an op whose temporary must outlive a call to another op needs a
  // slot that op does not use).
  float* workspace(int slot, size_t floats);

 private:
  static constexpr int kSlots = 12;
  float* ws_[kSlots] = {};
  size_t ws_size_[kSlots] = {};
  int device_ = 0;
  int sm_count_ = 0;
  int max_smem_optin_ = 48 * 1024;
};

}  // namespace statex
