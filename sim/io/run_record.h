#pragma once
// Everything a run records. The trainer fills a RunRecord; sim/io/results_file.cpp writes it to
// HDF5 with the layout in docs/results_format.md (format_version kResultsFormatVersion).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace statex {

constexpr int kResultsFormatVersion = 1;
constexpr int kCheckpointFormatVersion = 1;

// One row of the learning curve (one per logged training step).
struct CurvePoint {
  int64_t step = 0;
  float loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
};

// One evaluation on the test set.
struct EvalPoint {
  int64_t step = 0;
  float loss = 0;       // mean CE over labelled positions
  float accuracy = 0;   // Zoology: mean over examples of per-example mean over labelled positions
  std::vector<float> segment_accuracy;  // [num test segments], same definition within a segment
  std::vector<float> gap_accuracy;      // [num gap buckets]: token accuracy of queries in bucket
  std::vector<int64_t> gap_count;       // [num gap buckets]: labelled queries in bucket
  // [kNumQueryClasses] token accuracy / count of the per-task query classes (sim/task/tasks.h:
  // forgetting kept / updated, compositional shared / unique first token); NaN / 0 when none.
  std::vector<float> class_accuracy;
  std::vector<int64_t> class_count;
};

// State size of one model, per layer, in scalars (bytes = 4 * scalars for fp32).
struct StateSize {
  std::vector<int64_t> layer_state_scalars;       // [L] recurrent state
  std::vector<int64_t> layer_conv_state_scalars;  // [L] conv state (short conv / Mamba2 conv)
  // [L] Zoology's state_size() of each layer (sim/model/state_size.h: its own formula per
  // family, not recurrent + conv); empty when read from a file written before it was recorded.
  std::vector<int64_t> layer_zoology_state_scalars;
  // Attention: layer_state_scalars is the KV cache at this length T (2 T D per layer, it grows
  // with T); 0 for the recurrent models, whose state does not depend on T.
  int64_t kv_cache_len = 0;
  bool is_kv_cache() const { return kv_cache_len > 0; }
  int64_t total_state_scalars() const;
  int64_t total_conv_state_scalars() const;
  // The "recurrent+conv" convention: recurrent state plus the (W-1) x channels conv state.
  int64_t total_state_with_conv_scalars() const {
    return total_state_scalars() + total_conv_state_scalars();
  }
  // The "zoology" convention: what Zoology's state_size() counts (sum of the layers).
  int64_t total_zoology_state_scalars() const;
};

// The StateX expansion event (issue 4); absent when no expansion happened.
struct ExpansionEvent {
  bool happened = false;
  int64_t step = 0;
  std::string mode;                 // reinit | inherit
  std::vector<int> layers;          // expanded layer indices
  int64_t state_scalars_before = 0, state_scalars_after = 0;
  int64_t params_before = 0, params_after = 0;
  float accuracy_before = -1, accuracy_after = -1, accuracy_end = -1;  // -1 = not measured
};

struct RunRecord {
  std::string status = "running";   // running | completed | failed | interrupted
  std::string failure_reason;        // set when failed; for interrupted: signal and step
  // One line per --resume of this run: "resumed at step S from CK[; changed: opt a -> b, ...]".
  std::string resume_log;
  std::string arm;                   // StateX arm label ("" | statex | control | scratch)
  // Identity (docs/results_format.md): a random id made when the run starts, kept across
  // --resume and also stored in its checkpoints; the digest of each token file it reads
  // ("data.train=<digest>", one a line). Both "" in files written before they existed.
  std::string run_uid;
  std::string data_digests;
  // Fully resolved config as option name -> value string (every option, defaults included),
  // and the same as INI text (round-trips through `statex train --config`).
  std::map<std::string, std::string> config;
  std::string config_ini;
  // Build / environment info.
  std::string git_commit, compiler, cxx_flags, build_type, device, hostname;
  bool cuda_enabled = false;
  int omp_threads = 0;
  // Machine, flavour and math libraries (sim/core/provenance.h), as /build attributes; empty in
  // files written before they were recorded.
  std::vector<std::pair<std::string, std::string>> provenance;
  uint64_t param_seed = 0, train_data_seed = 0, test_data_seed = 0;
  // Model.
  std::string model;
  int64_t n_params = 0;
  StateSize state;
  // MQAR test segments ("T:K:count" each) and gap-bucket lower edges (distance in tokens).
  std::vector<std::string> test_segments;
  std::vector<int64_t> gap_bucket_edges;  // bucket i covers [edges[i], edges[i+1]); last open
  std::vector<std::string> query_classes;  // names of EvalPoint::class_accuracy's columns
  // Progress.
  std::vector<CurvePoint> curve;
  std::vector<EvalPoint> evals;
  // The validation split (mqar.valid / data.valid), evaluated at the same steps as `evals`
  // (one entry per entry of `evals`); absent (has_valid false) when none is configured.
  bool has_valid = false;
  std::vector<std::string> valid_segments;
  uint64_t valid_data_seed = 0;  // same seed as train / test, its own "valid" split stream
  std::vector<EvalPoint> valid_evals;
  ExpansionEvent expansion;
  int64_t steps_done = 0;
  double wall_time_s = 0;
  double tokens_seen = 0;
};

}  // namespace statex
