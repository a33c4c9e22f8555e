// CPU tests of the memory op family: memory and data movement: zero, strided_copy, gather_rows,
// scatter_add_rows, add_inplace, scale_inplace (sim/ops/cpu/memory.cpp).
//
// Tolerance policy (see tests/support/fd_check.h): gradients by central finite differences on
// odd shapes (N=63, C=60, OC=37, V=53); forwards against direct double-precision formulas with
// tolerances of a few fp32 ulps times the size of the reduction. Accumulation semantics: every
// backward is run once into zeroed gradients (checked by FD) and once into random pre-filled
// gradients, which must end up holding prefill + gradient.
#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <functional>
#include <limits>
#include <vector>

#include "sim/core/backend.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

TEST(CpuMemory, NameAllocZeroAndTransfers) {
  auto be = cpu();
  EXPECT_EQ(be->name(), "cpu");
  for (size_t bytes : {size_t(0), size_t(1), size_t(100), size_t(4096 + 3)}) {
    void* p = be->malloc_bytes(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << bytes << " bytes";
    be->free_bytes(p);
  }
  const size_t n = 1000;
  float* d = static_cast<float*>(be->malloc_bytes(n * sizeof(float)));
  Vec src = random_vector(n, 1), back(n, -7.f);
  be->to_device(d, src.data(), n * sizeof(float));
  be->to_host(back.data(), d, n * sizeof(float));
  EXPECT_EQ(back, src);
  be->zero(d, n * sizeof(float));
  be->to_host(back.data(), d, n * sizeof(float));
  EXPECT_EQ(back, zeros(n));
  be->free_bytes(d);
}

// Big buffers (>= 4 MiB) are 2 MiB-aligned so that they can be backed by transparent huge pages,
// and the whole requested size is usable.
TEST(CpuMemory, BigBuffersAreHugePageAligned) {
  auto be = cpu();
  const size_t huge = size_t(2) << 20;
  for (size_t bytes : {2 * huge, 5 * huge + 12345}) {
    char* p = static_cast<char*>(be->malloc_bytes(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % huge, 0u) << bytes << " bytes";
    be->zero(p, bytes);
    p[bytes - 1] = 1;
    EXPECT_EQ(p[bytes - 1], 1);
    be->free_bytes(p);
  }
}

// Big buffers are zeroed in parallel slices: every byte, including a partial last slice, and
// nothing outside [p, p + bytes).
TEST(CpuMemory, ZeroClearsBigBuffersExactly) {
  auto be = cpu();
  const size_t bytes = (size_t(5) << 20) + 12345, pad = 64;
  std::vector<unsigned char> buf(bytes + 2 * pad, 0xAB);
  be->zero(buf.data() + pad, bytes);
  for (size_t i = 0; i < buf.size(); ++i) {
    const bool inside = i >= pad && i < pad + bytes;
    ASSERT_EQ(buf[i], inside ? 0 : 0xAB) << "byte " << i;
  }
}

TEST(CpuMemory, StridedCopyOverwriteAndAccumulate) {
  auto be = cpu();
  const int rows = 63, cols = 17, src_ld = 51, dst_ld = 29;
  Vec src = random_vector(size_t(rows) * src_ld, 2);
  Vec dst0 = random_vector(size_t(rows) * dst_ld, 3);
  for (bool accumulate : {false, true}) {
    Vec dst = dst0;
    be->strided_copy(dst.data(), dst_ld, src.data() + 5, src_ld, rows, cols, accumulate);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < dst_ld; ++c) {
        float want = dst0[r * dst_ld + c];
        if (c < cols) want = (accumulate ? want : 0.f) + src[r * src_ld + 5 + c];
        ASSERT_EQ(dst[r * dst_ld + c], want) << "r=" << r << " c=" << c << " acc=" << accumulate;
      }
  }
}

TEST(CpuMemory, GatherAndScatterAddRowsExact) {
  auto be = cpu();
  const int rows = 41, M = 19, C = 23;
  Vec inp = random_vector(size_t(rows) * C, 4);
  std::vector<int> idx(M);
  for (int i = 0; i < M; ++i) idx[i] = (i * 7 + 3) % rows;  // distinct, unordered
  Vec out(size_t(M) * C, -1.f);
  be->gather_rows(out.data(), inp.data(), idx.data(), M, C);
  for (int i = 0; i < M; ++i)
    for (int c = 0; c < C; ++c) ASSERT_EQ(out[i * C + c], inp[idx[i] * C + c]);

  Vec dinp = random_vector(size_t(rows) * C, 5), want = dinp;
  Vec dout = random_vector(size_t(M) * C, 6);
  be->scatter_add_rows(dinp.data(), dout.data(), idx.data(), M, C);
  for (int i = 0; i < M; ++i)
    for (int c = 0; c < C; ++c) want[idx[i] * C + c] += dout[i * C + c];
  EXPECT_EQ(dinp, want);
}

TEST(CpuMemory, AddAndScaleInplace) {
  auto be = cpu();
  const size_t n = 100003;  // crosses the parallel threshold, odd
  Vec y = random_vector(n, 7), x = random_vector(n, 8), want(n);
  for (size_t i = 0; i < n; ++i) want[i] = y[i] + x[i];
  be->add_inplace(y.data(), x.data(), n);
  EXPECT_EQ(y, want);
  for (size_t i = 0; i < n; ++i) want[i] = y[i] * -0.37f;
  be->scale_inplace(y.data(), -0.37f, n);
  EXPECT_EQ(y, want);
}

}  // namespace
}  // namespace statex
