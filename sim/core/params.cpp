#include "sim/core/params.h"

#include <stdexcept>

namespace statex {

int64_t ParamEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const ParamEntry& ParamTable::add(const std::string& name, std::vector<int64_t> shape) {
  if (index_.count(name)) throw std::logic_error("duplicate parameter name: " + name);
  ParamEntry e{name, std::move(shape), total_};
  total_ += e.numel();
  index_[name] = entries_.size();
  entries_.push_back(std::move(e));
  return entries_.back();
}

const ParamEntry& ParamTable::at(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw std::out_of_range("no parameter named '" + name + "'");
  return entries_[it->second];
}

}  // namespace statex
