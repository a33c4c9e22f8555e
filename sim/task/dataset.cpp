// Batches from any Dataset (dataset.h).
#include "sim/task/dataset.h"

#include <algorithm>
#include <stdexcept>

namespace statex {

std::vector<int> MqarBatch::dense_targets() const {
  std::vector<int> dense(static_cast<size_t>(B) * T, kIgnoreLabel);
  for (int n = 0; n < num_labels(); ++n) dense[label_row[n]] = label_target[n];
  return dense;
}

MqarBatch make_batch(const Dataset& ds, long first_index, int batch_size, bool wrap) {
  const long size = ds.size();
  if (batch_size < 1) throw std::invalid_argument("make_batch: batch_size must be >= 1");
  if (!wrap && (first_index < 0 || first_index >= size))
    throw std::out_of_range("make_batch: first index " + std::to_string(first_index) +
                            " outside a set of " + std::to_string(size));
  MqarBatch batch;
  batch.B = wrap ? batch_size : static_cast<int>(std::min<long>(batch_size, size - first_index));
  const int B = batch.B;
  batch.example_index.resize(B);
  batch.example_segment.resize(B);
  int T = 0;
  for (int b = 0; b < B; ++b) {
    const long idx = wrap ? ((first_index + b) % size + size) % size : first_index + b;
    batch.example_index[b] = idx;
    batch.example_segment[b] = ds.segment_of(idx);
    T = std::max(T, ds.seq_len(idx));
  }
  batch.T = T;
  const size_t BT = static_cast<size_t>(B) * T;
  batch.inputs.assign(BT, 0);  // right padding: token 0
  std::vector<int> targets(BT, kIgnoreLabel), distance(BT, -1), query_class(BT, kNoQueryClass);

  // Each example writes its own row: no shared state, any thread count gives the same bytes.
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const size_t row = static_cast<size_t>(b) * T;
    ds.example(batch.example_index[b], ExampleRow{&batch.inputs[row], &targets[row],
                                                  &distance[row], &query_class[row]});
  }

  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const size_t r = static_cast<size_t>(b) * T + t;
      if (targets[r] == kIgnoreLabel) continue;
      batch.label_row.push_back(static_cast<int>(r));
      batch.label_target.push_back(targets[r]);
      batch.label_distance.push_back(distance[r]);
      batch.label_class.push_back(query_class[r]);
      batch.label_example.push_back(b);
    }
  return batch;
}

}  // namespace statex
