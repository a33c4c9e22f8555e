#pragma once
// Flat parameter storage: one buffer for parameters (and, of the same layout, gradients and the
// two AdamW moments) plus a name -> (offset, shape) table. Names are PyTorch state_dict names of
// the reference modules (docs/design.md §4), e.g. "layers.0.attn.q_proj.weight" with [out, in]
// layout.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace statex {

struct ParamEntry {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // in floats, into the flat buffer
  int64_t numel() const;
  bool is_matrix() const { return shape.size() >= 2; }  // AdamW decays 2-D weights only
};

class ParamTable {
 public:
  // Appends an entry; offsets are assigned in insertion order. Throws on duplicate names.
  const ParamEntry& add(const std::string& name, std::vector<int64_t> shape);
  const ParamEntry& at(const std::string& name) const;  // throws std::out_of_range with the name
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const std::vector<ParamEntry>& entries() const { return entries_; }
  int64_t total() const { return total_; }

 private:
  std::vector<ParamEntry> entries_;
  std::map<std::string, size_t> index_;
  int64_t total_ = 0;
};

}  // namespace statex
