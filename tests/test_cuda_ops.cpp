// CUDA ops vs the CPU reference: one test per op group, forward and every gradient, through
// the verify harness (sim/verify). Skips with a message without a GPU or a CUDA build.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/core/backend.h"
#include "sim/verify/verify.h"

namespace statex {
namespace {

class CudaOps : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaOps, MatchesCpuReference) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no CUDA: " << why;
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  verify::Options opt;
  opt.gpu_reps = 0;  // correctness only
  opt.cpu_reps = 0;
  int n = 0;
  for (const auto& c : verify::make_cases(false, opt.seed)) {
    if (c.group != GetParam()) continue;
    ++n;
    verify::Row r = verify::run_case(*cpu, *gpu, c, opt);
    std::ostringstream msg;
    msg << r.op << " [" << r.shape << "]";
    if (!r.error.empty()) msg << " error: " << r.error;
    for (const auto& d : r.outputs)
      if (!d.pass)
        msg << "\n  " << d.name << ": rel RMS " << d.rel_rms << " (tol " << r.tol << "), max abs "
            << d.max_abs << ", worst element " << d.worst << " cpu " << d.ref_at_worst << " gpu "
            << d.got_at_worst << (d.finite ? "" : " (non-finite)");
    EXPECT_TRUE(r.pass) << msg.str();
  }
  EXPECT_GT(n, 0) << "no verify case in group " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(AllOps, CudaOps, ::testing::ValuesIn(verify::op_groups()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Runs everywhere (no GPU needed): the harness's case list covers every op group, every case
// has a run function and outputs to compare.
TEST(VerifyCases, EveryGroupHasCasesWithOutputs) {
  auto cases = verify::make_cases(false, 1);
  for (const auto& g : verify::op_groups()) {
    int n = 0;
    for (const auto& c : cases)
      if (c.group == g) ++n;
    EXPECT_GT(n, 0) << g;
  }
  for (const auto& c : cases) {
    EXPECT_TRUE(bool(c.run)) << c.op;
    int outputs = 0;
    for (const auto& [name, t] : c.tensors) outputs += t.role == verify::Tensor::Output;
    EXPECT_GT(outputs, 0) << c.op << " " << c.shape;
  }
}

}  // namespace
}  // namespace statex
