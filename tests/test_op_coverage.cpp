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

// Every op is called by its stem's CPU test file, tests/ops/test_<stem>.cpp.
TEST(OpCoverage, EveryOpHasACpuTestInItsStemFile) {
  for (const OpInfo& op : op_list()) {
    const fs::path test =
        fs::path(source_dir()) / "tests/ops" / ("test_" + std::string(op.stem) + ".cpp");
    ASSERT_TRUE(fs::exists(test)) << op.name << ": no CPU test file " << test;
    EXPECT_TRUE(calls(read_text(test), op.name)) << op.name << " is called by no test in " << test;
  }
}

// The twins share their stem (as Ginkgo's executors share a kernel's path): op X of stem S is
// defined in sim/ops/cpu/S.cpp and kernels/S.cu, and no op file defines an op of another stem.
TEST(OpCoverage, TwinsAreNamedAlike) {
  const std::string src = source_dir();
  struct Side {
    std::string dir, ext, cls;
  };
  for (const Side& side : {Side{src + "/sim/ops/cpu", ".cpp", "CpuBackend::"},
                           Side{src + "/kernels", ".cu", "CudaBackend::"}}) {
    for (const OpInfo& op : op_list()) {
      const fs::path file = fs::path(side.dir) / (std::string(op.stem) + side.ext);
      ASSERT_TRUE(fs::exists(file)) << op.name << ": missing " << file;
      EXPECT_NE(read_text(file).find(side.cls + op.name + "("), std::string::npos)
          << op.name << " is not defined in " << file;
    }
    const std::regex def(side.cls + "(\\w+)\\(");
    size_t definitions = 0;
    for (const auto& e : fs::directory_iterator(side.dir)) {
      if (e.path().extension() != side.ext) continue;
      const std::string text = read_text(e.path()), stem = e.path().stem().string();
      for (std::sregex_iterator m(text.begin(), text.end(), def), end; m != end; ++m) {
        const OpInfo* op = find_op((*m)[1].str());
        if (!op) continue;
        ++definitions;
        EXPECT_EQ(op->stem, stem) << e.path() << " defines " << op->name;
      }
    }
    // Each op defined exactly once per side (and the scan above did find the definitions).
    EXPECT_EQ(definitions, op_list().size()) << side.dir;
  }
}

}  // namespace
}  // namespace statex
