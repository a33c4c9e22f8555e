#pragma once
// The op list (sim/core/ops.def) as data: an id per op and a table of (stem, name, parameters),
// for whatever must enumerate the ops at run time: `statex verify`'s coverage check, the timing
// wrapper's labels, tests/test_op_coverage.cpp.
#include <string>
#include <vector>

namespace statex {

enum class OpId {
#define STATEX_OP(stem, name, ret, params, args) name,
#include "sim/core/ops.def"
};

struct OpInfo {
  OpId id;
  const char* stem;     // op family: file stem in sim/ops/cpu/, kernels/, tests/ops/; verify group
  const char* name;     // Backend method
  const char* params;   // the parameter list as written in ops.def
  bool has_accumulate;  // last parameter is `bool accumulate` (verified in both modes)
};

// Every op, in ops.def order.
const std::vector<OpInfo>& op_list();
const OpInfo& op_info(OpId id);
// nullptr when `name` is not an op.
const OpInfo* find_op(const std::string& name);
// The distinct stems, in order of first appearance.
std::vector<std::string> op_stems();

}  // namespace statex
