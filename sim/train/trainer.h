#pragma once
// The training loop: MQAR batches -> model forward/backward -> clip -> AdamW, with periodic
// evaluation, progress lines, atomic HDF5 results, checkpoints, exact resume, and the StateX
// expansion event (docs/design.md §3) at a configured step.
//
// Determinism: for a given config (seeds) and OpenMP thread count, a run is bit-for-bit
// reproducible, and `--resume` from a checkpoint continues with exactly the loss curve of an
// uninterrupted run (batches are a pure function of the step; the checkpoint holds parameters,
// AdamW moments, per-tensor step counts and the schedule). With a different thread count the
// data are still identical, but reductions split across threads (weight gradients of norms,
// GEMM blocking inside Eigen) may round differently, so curves agree only to float precision.
#include <memory>
#include <string>

#include "sim/core/config.h"
#include "sim/io/run_record.h"

namespace statex {

struct TrainerOptions {
  std::string out_path;        // --out: results file (HDF5), written atomically
  std::string checkpoint_out;  // --checkpoint-out: checkpoint written at the end (and every N)
  std::string resume_path;     // --resume: continue from this checkpoint
  std::string init_from;       // --init-from: start from these weights (fresh optimizer)
  bool quiet = false;          // --quiet: no progress lines
  double progress_every_s = 2.0;
};

// Exit codes of `statex train`.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 5;  // the run failed (non-finite loss...); results say why

class Trainer {
 public:
  Trainer(ExperimentConfig cfg, TrainerOptions opt);
  ~Trainer();
  // Every input check (options, data, checkpoints, the identity of a resumed run's files) and
  // every allocation, before anything is written; throws ConfigError (exit 2). run() calls it
  // when it has not been called.
  void prepare();
  int run();  // returns an exit code; the results file records the outcome
  const RunRecord& record() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statex
