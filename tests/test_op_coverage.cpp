// Coverage computed from the op list (sim/core/ops.def), as ggml's test-backend-ops: an op added to
// the list without a verify case or a CPU test fails here. No GPU needed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "sim/core/op_list.h"
#include "sim/verify/verify.h"

namespace statex {
namespace {

namespace fs = std::filesystem;

std::string source_dir() {
  const char* env = std::getenv("STATEX_SOURCE_DIR");
  const std::string here = __FILE__;
  return env ? env : here.substr(0, here.rfind("/tests/"));
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// True when `text` calls `op` (".op(" or "->op(").
bool calls(const std::string& text, const std::string& op) {
  return std::regex_search(text, std::regex("(\\.|->)" + op + "\\s*\\("));
}

TEST(OpList, NamesAreUniqueAndStemsKnown) {
  ASSERT_FALSE(op_list().empty());
  for (size_t i = 0; i < op_list().size(); ++i) {
    const OpInfo& op = op_list()[i];
    EXPECT_EQ(static_cast<size_t>(op.id), i) << op.name;
    EXPECT_EQ(find_op(op.name), &op) << op.name << " is listed twice";
    EXPECT_NE(std::string(op.stem), "") << op.name;
  }
  EXPECT_EQ(find_op("no_such_op"), nullptr);
  EXPECT_TRUE(find_op("gla_backward")->has_accumulate);
  EXPECT_FALSE(find_op("gla_forward")->has_accumulate);
}

TEST(OpCoverage, EveryOpHasAVerifyCaseInEachMode) {
  const auto cases = verify::make_cases(false, 1);
  const auto missing = verify::missing_cases(cases);
  std::string list;
  for (const auto& m : missing) list += " " + m;
  EXPECT_TRUE(missing.empty()) << "ops of sim/core/ops.def without a case in "
                                  "sim/verify/verify_cases.cpp:"
                               << list;
  for (const auto& c : cases) EXPECT_EQ(c.group, verify::case_op(c.op).stem) << c.op;
  // The coverage check itself can fail: drop one op's cases and it must be reported.
  std::vector<verify::Case> fewer;
  for (const auto& c : cases)
    if (c.op.rfind("rmsnorm_forward", 0) != 0) fewer.push_back(c);
  EXPECT_EQ(verify::missing_cases(fewer), std::vector<std::string>{"rmsnorm_forward"});
  EXPECT_THROW(verify::case_op("no_such_op(=)"), std::logic_error);
}

TEST(OpCoverage, EveryOpHasACpuTest) {
  // The GoogleTest files that exercise the CPU ops (the CUDA comparison and this file excluded).
  std::string tests;
  for (const auto& e : fs::recursive_directory_iterator(source_dir() + "/tests")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("test_", 0) != 0 || e.path().extension() != ".cpp") continue;
    if (name == "test_cuda_ops.cpp" || name == "test_op_coverage.cpp" ||
        name == "test_op_timing.cpp")
      continue;
    tests += read_text(e.path());
  }
  ASSERT_FALSE(tests.empty()) << "no tests under " << source_dir();
  for (const OpInfo& op : op_list())
    EXPECT_TRUE(calls(tests, op.name))
        << op.name << " (stem " << op.stem << ") is called by no CPU test";
}

}  // namespace
}  // namespace statex
