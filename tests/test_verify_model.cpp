// The whole-model part of `statex verify` (sim/verify/model_check.cpp), run CPU against CPU:
// the mechanics (same init, same batches, loss curve and final parameters compared) must give
// exactly zero difference on identical backends. On a GPU, `statex verify` runs it CPU vs CUDA.
#include <gtest/gtest.h>

#include "sim/core/backend.h"
#include "sim/verify/model_check.h"

namespace {

TEST(VerifyModelCheck, IdenticalBackendsAgreeExactly) {
  auto a = statex::make_cpu_backend(), b = statex::make_cpu_backend();
  auto rows = statex::verify::model_rows(*a, *b, 7, 3);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& r : rows) {
    EXPECT_TRUE(r.pass) << r.shape << " " << r.error;
    EXPECT_TRUE(r.error.empty()) << r.error;
    ASSERT_EQ(r.outputs.size(), 2u);
    for (const auto& o : r.outputs) EXPECT_EQ(o.rel_rms, 0.0) << r.shape << " " << o.name;
  }
}

}  // namespace
