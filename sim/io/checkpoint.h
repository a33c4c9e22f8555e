#pragma once
// Checkpoint files (docs/results_format.md, format_version kCheckpointFormatVersion): model
// config, per-layer mixer shapes, parameters and (optionally) AdamW moments, trainer state.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/params.h"

namespace statex {

// What `statex train --resume` needs to continue a run exactly, beyond the parameters and the
// AdamW moments. Stored typed under /trainer.
struct TrainerState {
  std::string config_ini;              // the run's resolved options
  int64_t schedule_start = 0;          // the LR schedule (restarted by a StateX event)
  int64_t schedule_length = 0;
  int64_t schedule_warmup = 0;
  std::vector<int64_t> tensor_steps;   // AdamW per-tensor step counts, table order
  int64_t statex_event_step = -1;      // step of the StateX event (expansion / restart); -1: none yet
  double wall_time_s = 0;              // wall time of the run up to the checkpoint
  double tokens_seen = 0;              // training tokens up to the checkpoint
  // Identity of the run (docs/exit_codes.md, "Resume"; "" in files written before it existed):
  std::string run_uid;        // random id of the run, kept across --resume; also in its results
  std::string results_file;   // where the run writes its results (absolute path)
  std::string data_digests;   // "data.train=<digest>" per token file the run reads, one a line
  std::string status;         // running | interrupted | completed (the run's, at this checkpoint)
  bool operator==(const TrainerState& o) const {
    return config_ini == o.config_ini && schedule_start == o.schedule_start &&
           schedule_length == o.schedule_length && schedule_warmup == o.schedule_warmup &&
           tensor_steps == o.tensor_steps && statex_event_step == o.statex_event_step &&
           wall_time_s == o.wall_time_s && tokens_seen == o.tokens_seen &&
           run_uid == o.run_uid && results_file == o.results_file &&
           data_digests == o.data_digests && status == o.status;
  }
};

// Where a `statex expand` output came from. Stored under /expansion.
struct ExpansionOrigin {
  std::vector<int64_t> layers;  // the expanded layers
  std::string mode;             // statex.mode
  std::string source;           // the checkpoint it was expanded from
  bool operator==(const ExpansionOrigin& o) const {
    return layers == o.layers && mode == o.mode && source == o.source;
  }
};

struct Checkpoint {
  ModelConfig model;            // incl. per-layer shapes (model.layers; empty = all default)
  int64_t step = 0;             // optimizer steps done
  ParamTable table;             // names, shapes, offsets into the flat buffers below
  std::vector<float> params;    // [table.total()]
  std::vector<float> exp_avg;   // [table.total()] when has_optimizer, else empty
  std::vector<float> exp_avg_sq;
  bool has_optimizer = false;   // false for --weights-only files
  std::optional<TrainerState> trainer;      // written by `statex train` (absent: weights only)
  std::optional<ExpansionOrigin> expansion;  // written by `statex expand`
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
