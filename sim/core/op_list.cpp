#include "sim/core/op_list.h"

#include <algorithm>
#include <cstring>

namespace statex {

const std::vector<OpInfo>& op_list() {
  static const std::vector<OpInfo> ops = {
#define STATEX_OP(stem, name, ret, params, args) \
  {OpId::name, #stem, #name, #params, std::strstr(#params, "bool accumulate)") != nullptr},
#include "sim/core/ops.def"
  };
  return ops;
}

const OpInfo& op_info(OpId id) { return op_list()[static_cast<size_t>(id)]; }

const OpInfo* find_op(const std::string& name) {
  for (const OpInfo& op : op_list())
    if (name == op.name) return &op;
  return nullptr;
}

std::vector<std::string> op_stems() {
  std::vector<std::string> stems;
  for (const OpInfo& op : op_list())
    if (std::find(stems.begin(), stems.end(), op.stem) == stems.end()) stems.push_back(op.stem);
  return stems;
}

}  // namespace statex
