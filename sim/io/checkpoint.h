#pragma once
// Checkpoint files (docs/results_format.md, format_version kCheckpointFormatVersion): model
// config, per-layer mixer shapes, parameters and (optionally) AdamW moments, trainer state.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/params.h"

namespace statex {

struct Checkpoint {
  ModelConfig model;            // incl. per-layer shapes (model.layers; empty = all default)
  int64_t step = 0;             // optimizer steps done
  ParamTable table;             // names, shapes, offsets into the flat buffers below
  std::vector<float> params;    // [table.total()]
  std::vector<float> exp_avg;   // [table.total()] when has_optimizer, else empty
  std::vector<float> exp_avg_sq;
  bool has_optimizer = false;   // false for --weights-only files
  std::map<std::string, std::string> trainer_attrs;  // what --resume needs (strings)
};

// Writes atomically (path.tmp, then rename). Throws std::runtime_error naming the path and the
// reason (also when the buffers do not match the table).
void save_checkpoint(const std::string& path, const Checkpoint& ck);

// Reads a checkpoint. Throws ConfigError "cannot load checkpoint '<path>': <reason>" for a
// missing, non-HDF5 or truncated file, another format / format_version, missing datasets and
// shape mismatches. With `expected`, every expected parameter must be present with the same
// shape (and nothing else), and the returned table is a copy of *expected (its offsets).
Checkpoint load_checkpoint(const std::string& path, const ParamTable* expected = nullptr);

// Model options that differ ("model.d_model: 64 in the checkpoint, 128 expected"), including
// per-layer shapes. Empty when compatible.
std::vector<std::string> model_mismatches(const ModelConfig& in_checkpoint,
                                          const ModelConfig& expected);
// Throws ConfigError naming every mismatching option; `path` is used in the message.
void check_compatible(const Checkpoint& ck, const ModelConfig& expected,
                      const std::string& path = "checkpoint");

}  // namespace statex
