// Recall evaluation metrics (definitions in metrics.h). Sums are kept in double / int64 so the
// result does not depend on how the test set is cut into batches (up to double rounding).
#include "sim/task/metrics.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace statex {

std::vector<int64_t> default_gap_edges(int max_seq_len) {
  std::vector<int64_t> edges{1};
  while (edges.back() * 2 < max_seq_len) edges.push_back(edges.back() * 2);
  return edges;
}

EvalAccumulator::EvalAccumulator(int num_segments, std::vector<int64_t> gap_edges)
    : edges_(std::move(gap_edges)) {
  if (num_segments < 1) throw std::invalid_argument("EvalAccumulator: need >= 1 segment");
  if (edges_.empty()) throw std::invalid_argument("EvalAccumulator: gap edges are empty");
  for (size_t i = 1; i < edges_.size(); ++i)
    if (edges_[i] <= edges_[i - 1])
      throw std::invalid_argument("EvalAccumulator: gap edges must be strictly increasing");
  seg_acc_sum_.assign(num_segments, 0.0);
  seg_examples_.assign(num_segments, 0);
  reset();
}

void EvalAccumulator::reset() {
  loss_sum_ = example_acc_sum_ = 0;
  labels_ = examples_ = 0;
  std::fill(seg_acc_sum_.begin(), seg_acc_sum_.end(), 0.0);
  std::fill(seg_examples_.begin(), seg_examples_.end(), 0);
  gap_correct_.assign(edges_.size(), 0);
  gap_count_.assign(edges_.size(), 0);
  class_correct_.assign(kNumQueryClasses, 0);
  class_count_.assign(kNumQueryClasses, 0);
}

int EvalAccumulator::bucket_of(int64_t distance) const {
  return static_cast<int>(std::upper_bound(edges_.begin(), edges_.end(), distance) -
                          edges_.begin()) - 1;
}

void EvalAccumulator::add(const MqarBatch& batch, const int* predictions, const float* losses) {
  std::vector<int64_t> correct(batch.B, 0), count(batch.B, 0);
  for (int n = 0; n < batch.num_labels(); ++n) {
    const bool hit = predictions[n] == batch.label_target[n];
    const int b = batch.label_example[n];
    correct[b] += hit;
    count[b] += 1;
    loss_sum_ += losses[n];
    const int k = bucket_of(batch.label_distance[n]);
    if (k >= 0) {
      gap_correct_[k] += hit;
      gap_count_[k] += 1;
    }
    const int c = batch.label_class.empty() ? kNoQueryClass : batch.label_class[n];
    if (c >= 0 && c < kNumQueryClasses) {
      class_correct_[c] += hit;
      class_count_[c] += 1;
    }
  }
  labels_ += batch.num_labels();
  for (int b = 0; b < batch.B; ++b) {
    if (count[b] == 0) continue;
    const double acc = static_cast<double>(correct[b]) / static_cast<double>(count[b]);
    const int s = batch.example_segment[b];
    if (s < 0 || s >= static_cast<int>(seg_acc_sum_.size()))
      throw std::out_of_range("EvalAccumulator: example segment " + std::to_string(s) +
                              " outside the " + std::to_string(seg_acc_sum_.size()) +
                              " segments it was built for");
    example_acc_sum_ += acc;
    examples_ += 1;
    seg_acc_sum_[s] += acc;
    seg_examples_[s] += 1;
  }
}

EvalPoint EvalAccumulator::result(int64_t step) const {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EvalPoint p;
  p.step = step;
  p.loss = labels_ ? static_cast<float>(loss_sum_ / labels_) : nan;
  p.accuracy = examples_ ? static_cast<float>(example_acc_sum_ / examples_) : nan;
  for (size_t s = 0; s < seg_acc_sum_.size(); ++s)
    p.segment_accuracy.push_back(
        seg_examples_[s] ? static_cast<float>(seg_acc_sum_[s] / seg_examples_[s]) : nan);
  for (size_t k = 0; k < edges_.size(); ++k) {
    p.gap_accuracy.push_back(gap_count_[k] ? static_cast<float>(gap_correct_[k]) /
                                                 static_cast<float>(gap_count_[k])
                                           : nan);
    p.gap_count.push_back(gap_count_[k]);
  }
  for (int c = 0; c < kNumQueryClasses; ++c) {
    p.class_accuracy.push_back(class_count_[c] ? static_cast<float>(class_correct_[c]) /
                                                     static_cast<float>(class_count_[c])
                                               : nan);
    p.class_count.push_back(class_count_[c]);
  }
  return p;
}

}  // namespace statex
