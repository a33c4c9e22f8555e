// OpTimingBackend: forwards every op unchanged and counts calls per op (linear per shape).
#include <gtest/gtest.h>

#include <vector>

#include "sim/core/op_timing_backend.h"
#include "sim/ops/cpu/cpu_backend.h"
#include "tests/support/fd_check.h"

using namespace statex;
using namespace statex::testing;

namespace {

using Vec = std::vector<float>;

const OpTimingBackend::Row* find_row(const std::vector<OpTimingBackend::Row>& rows,
                                     const std::string& op) {
  for (const auto& r : rows)
    if (r.op == op) return &r;
  return nullptr;
}

TEST(OpTimingBackend, ForwardsResultsAndCountsCallsPerOp) {
  CpuBackend cpu;
  OpTimingBackend prof(cpu);
  EXPECT_EQ(prof.name(), "cpu");
  const int N = 3, C = 4, OC = 5;
  Vec x = random_vector(size_t(N) * C, 1), w = random_vector(size_t(OC) * C, 2);
  Vec y_direct(size_t(N) * OC), y_prof(size_t(N) * OC), s_direct(x.size()), s_prof(x.size());
  cpu.linear_forward(y_direct.data(), x.data(), w.data(), nullptr, N, C, OC);
  cpu.silu_forward(s_direct.data(), x.data(), x.size());
  for (int rep = 0; rep < 2; ++rep) {
    prof.linear_forward(y_prof.data(), x.data(), w.data(), nullptr, N, C, OC);
    prof.silu_forward(s_prof.data(), x.data(), x.size());
  }
  EXPECT_EQ(y_prof, y_direct);
  EXPECT_EQ(s_prof, s_direct);

  auto rows = prof.rows();
  ASSERT_EQ(rows.size(), 2u);
  const auto* lin = find_row(rows, "linear_forward 3x4->5");
  const auto* silu = find_row(rows, "silu_forward");
  ASSERT_NE(lin, nullptr);
  ASSERT_NE(silu, nullptr);
  EXPECT_EQ(lin->calls, 2);
  EXPECT_EQ(silu->calls, 2);
  EXPECT_GE(lin->seconds, 0.0);
  EXPECT_GE(rows[0].seconds, rows[1].seconds);  // sorted, largest first
  const std::string table = prof.table(2, 1.0);
  EXPECT_NE(table.find("linear_forward 3x4->5"), std::string::npos) << table;
  EXPECT_NE(table.find("(all ops)"), std::string::npos) << table;

  prof.reset();
  EXPECT_TRUE(prof.rows().empty());
}

}  // namespace
