#pragma once
// Token files read by `statex eval --tokens`, and the eval output file it writes
// (docs/results_format.md, "Token file" and "Eval output file").
#include <cstdint>

#include "sim/core/labels.h"
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace statex {

constexpr int kEvalFormatVersion = 1;

struct TokenFile {
  int64_t num_examples = 0;      // N
  int64_t seq_len = 0;           // T
  std::vector<int32_t> tokens;   // [N, T]
  bool has_labels = false;
  std::vector<int32_t> labels;   // [N, T] target at each position, kIgnoreLabel = unlabelled
  // Optional (written by `statex data`; empty when absent from the file):
  std::vector<int32_t> lengths;      // [N] real length of each example (the rest is padding)
  std::vector<int32_t> segment;      // [N] segment id of each example
  std::vector<int32_t> task;         // [N] task id (Task: 0 mqar, 1 forgetting, 2 compositional)
  std::vector<int32_t> distance;     // [N, T] key->query distance at labelled positions, else -1
  std::vector<int32_t> query_class;  // [N, T] QueryClass at labelled positions, else -1
  std::vector<std::string> segment_names;  // attribute "segments", comma-separated
  std::map<std::string, std::string> info; // further string attributes (config_ini, split, ...)
};

// Throws ConfigError "token file '<path>': <reason>" (missing file, not HDF5, no /tokens, not
// 2-D integers, labels of another shape, ...).
TokenFile read_token_file(const std::string& path);
// Atomic write of the same layout (tests, data preparation).
void write_token_file(const std::string& path, const TokenFile& tf);
// Digest of a token file's content (every array and the segment names; not its attributes or
// HDF5 layout, so a file regenerated with the same content keeps it): "crc32:XXXXXXXX
// adler32:XXXXXXXX n:N t:T". Recorded by `statex train` for each data.* file and checked on
// --resume (docs/exit_codes.md, "Resume").
std::string token_file_digest(const TokenFile& tf);

// Throws ConfigError naming the first token / label outside [0, vocab_size) (labels may also be
// kIgnoreLabel), with its example and position.
void check_token_range(const TokenFile& tf, int vocab_size, const std::string& path);

struct EvalOutput {
  std::string checkpoint, token_file;  // provenance (paths as given)
  int64_t num_examples = 0, seq_len = 0, vocab_size = 0;  // N, T, V
  std::vector<int32_t> predictions;    // [N, T] argmax of the logits at every position
  // Logits rows: every position ([N, T, V], positions empty) or only the labelled ones
  // ([M, V] with positions [M, 2] = (example, position) of each row).
  bool all_positions = false;
  std::vector<int64_t> positions;      // [M, 2]
  std::vector<float> logits;
  // Scores (only meaningful when has_labels; NaN otherwise).
  bool has_labels = false;
  int64_t labelled_positions = 0;
  float accuracy = std::numeric_limits<float>::quiet_NaN();        // Zoology: mean of per-example means
  float token_accuracy = std::numeric_limits<float>::quiet_NaN();  // correct / labelled
  float loss = std::numeric_limits<float>::quiet_NaN();            // mean CE over labelled
  std::vector<float> example_accuracy;  // [N], NaN for an example without labels
};

// Atomic write; throws std::runtime_error naming the path (also on inconsistent sizes).
void write_eval_output(const std::string& path, const EvalOutput& out);
EvalOutput read_eval_output(const std::string& path);

}  // namespace statex
