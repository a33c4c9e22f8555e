#pragma once
// Recall evaluation metrics (docs/design.md §2): loss, Zoology accuracy, per-segment accuracy and
// recall as a function of key->query distance. Fed batch by batch; fills statex::EvalPoint.
//
// Definitions (all over labelled positions only):
//   loss              mean cross-entropy over every labelled position of the test set.
//   accuracy          Zoology's: mean over EXAMPLES of each example's mean accuracy over its
//                     labelled positions. Differs from token accuracy when examples carry
//                     different numbers of labels (mixtures of K).
//   segment_accuracy  the same definition restricted to each test segment (NaN if it got no
//                     example).
//   gap_accuracy      TOKEN accuracy of the queries whose key->query distance d lies in bucket i
//                     = [edges[i], edges[i+1]) (the last bucket is open); NaN when empty.
//   gap_count         labelled queries per bucket. Distances below edges[0] (and unknown
//                     distances, -1, from token files without /distance) are not counted.
//   class_accuracy    TOKEN accuracy per query class (tasks.h QueryClass: forgetting kept /
//                     updated key, compositional first token shared / unique); NaN when empty.
//   class_count       labelled queries per class.
// Examples with no labelled position (none exist in MQAR, K >= 1) are skipped.
#include <cstdint>
#include <vector>

#include "sim/io/run_record.h"
#include "sim/task/dataset.h"

namespace statex {

// Lower edges 1, 2, 4, ... (powers of two below max_seq_len): distances lie in [2, T-2].
std::vector<int64_t> default_gap_edges(int max_seq_len);

class EvalAccumulator {
 public:
  // gap_edges must be non-empty and strictly increasing (std::invalid_argument otherwise).
  EvalAccumulator(int num_segments, std::vector<int64_t> gap_edges);

  // predictions [N] (argmax token) and losses [N] (per-label CE) at the batch's labelled
  // positions, in the batch's label order (N = batch.num_labels()).
  void add(const MqarBatch& batch, const int* predictions, const float* losses);

  EvalPoint result(int64_t step) const;
  const std::vector<int64_t>& gap_edges() const { return edges_; }
  int64_t num_examples() const { return examples_; }
  int64_t num_labels() const { return labels_; }
  void reset();

 private:
  int bucket_of(int64_t distance) const;  // -1 when below the first edge

  std::vector<int64_t> edges_;
  double loss_sum_ = 0, example_acc_sum_ = 0;
  int64_t labels_ = 0, examples_ = 0;
  std::vector<double> seg_acc_sum_;
  std::vector<int64_t> seg_examples_;
  std::vector<int64_t> gap_correct_, gap_count_;
  std::vector<int64_t> class_correct_, class_count_;
};

}  // namespace statex
