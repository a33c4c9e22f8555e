#pragma once
// A set of examples the trainer draws batches from: generated (MqarDataset, mqar.h) or read from
// a token file (TokenFileDataset, token_dataset.h). Batches are drawn the same way from both,
// so a file written by `statex data` trains bit-for-bit like the generator it came from.
#include <string>
#include <vector>

#include "sim/core/labels.h"  // kIgnoreLabel = -100 (unlabelled target)
#include "sim/task/tasks.h"   // ExampleRow

namespace statex {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual long size() const = 0;                 // examples over all segments
  virtual int num_segments() const = 0;
  virtual std::vector<std::string> segment_names() const = 0;  // one per segment (results files)
  virtual int max_seq_len() const = 0;
  virtual int segment_of(long index) const = 0;  // std::out_of_range outside [0, size)
  virtual int seq_len(long index) const = 0;     // length of example `index` (<= max_seq_len)
  // Writes example `index` (seq_len(index) positions of each row). Thread-safe.
  virtual void example(long index, const ExampleRow& row) const = 0;
};

// A batch ready for the model. Shorter examples are right-padded with token 0 and no labels
// (padding sits after every real token, so a causal model's outputs at real positions are
// unchanged). Labelled positions come as parallel arrays of length num_labels(), ordered by
// example then position.
struct MqarBatch {
  int B = 0, T = 0;                  // T = max seq_len in the batch
  std::vector<int> inputs;           // [B*T]
  std::vector<int> label_row;        // [N] flat row b*T + t of the labelled position
  std::vector<int> label_target;     // [N] the value token to predict
  std::vector<int> label_distance;   // [N] key->query distance in tokens (-1 unknown)
  std::vector<int> label_class;      // [N] QueryClass (-1 none)
  std::vector<int> label_example;    // [N] b
  std::vector<int> example_segment;  // [B] segment of each example
  std::vector<long> example_index;   // [B] dataset index of each example

  int num_labels() const { return static_cast<int>(label_row.size()); }
  // [B*T] targets with kIgnoreLabel at unlabelled positions (for code that wants dense labels).
  std::vector<int> dense_targets() const;
};

// Examples first_index .. first_index+batch_size-1. wrap = true: indices modulo ds.size() and
// B = batch_size (training). wrap = false: stops at the end of the set, so B = min(batch_size,
// size - first_index) (evaluation); throws std::out_of_range if first_index >= size.
// Examples are filled in parallel (OpenMP); the result does not depend on the thread count.
MqarBatch make_batch(const Dataset& ds, long first_index, int batch_size, bool wrap);

// Training batch of step s: indices s*B .. s*B+B-1 modulo the train set size (no shuffling: a
// generated set is already in random order, and a file is read in its row order).
inline MqarBatch make_train_batch(const Dataset& ds, long step, int batch_size) {
  return make_batch(ds, (step * static_cast<long>(batch_size)) % ds.size(), batch_size, true);
}

}  // namespace statex
