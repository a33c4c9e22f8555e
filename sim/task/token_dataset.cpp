// Token-file dataset (token_dataset.h) and the choice between file and generator.
#include "sim/task/token_dataset.h"

#include <algorithm>
#include <stdexcept>

#include "sim/task/mqar.h"

namespace statex {

TokenFileDataset::TokenFileDataset(const std::string& path, int vocab_size,
                                   const std::string& option)
    : option_(option) {
  try {
    tf_ = read_token_file(path);
    check_token_range(tf_, vocab_size, path);
  } catch (const ConfigError& e) {
    throw ConfigError(option + ": " + e.what());
  }
  const std::string where = option + ": token file '" + path + "'";
  const int64_t N = tf_.num_examples, T = tf_.seq_len;
  if (!tf_.has_labels)
    throw ConfigError(where + " has no '/labels' dataset; training and evaluation need the target "
                      "at each position (-100 where unlabelled)");
  if (tf_.lengths.empty()) tf_.lengths.assign(N, static_cast<int32_t>(T));
  int64_t labelled = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t len = tf_.lengths[n];
    if (len < 1 || len > T)
      throw ConfigError(where + ": '/lengths' of example " + std::to_string(n) + " is " +
                        std::to_string(len) + ", outside [1, " + std::to_string(T) + "]");
    for (int64_t t = 0; t < T; ++t) {
      const int32_t label = tf_.labels[n * T + t];
      labelled += label != kIgnoreLabel;
      if (t >= len && (tf_.tokens[n * T + t] != 0 || label != kIgnoreLabel))
        throw ConfigError(where + ": example " + std::to_string(n) + " has a token or label at "
                          "position " + std::to_string(t) + ", after its length " +
                          std::to_string(len) + " (padding must be token 0 with label -100)");
    }
    max_len_ = std::max<int>(max_len_, len);
  }
  if (labelled == 0)
    throw ConfigError(where + " has no labelled position (every label is -100): nothing to learn "
                      "or score");
  if (tf_.segment.empty()) tf_.segment.assign(N, 0);
  const int32_t top = *std::max_element(tf_.segment.begin(), tf_.segment.end());
  const int32_t low = *std::min_element(tf_.segment.begin(), tf_.segment.end());
  names_ = tf_.segment_names;
  if (names_.empty())
    for (int32_t s = 0; s <= top; ++s) names_.push_back("file:" + std::to_string(s));
  if (low < 0 || top >= static_cast<int32_t>(names_.size()))
    throw ConfigError(where + ": '/segment' ids must lie in [0, " + std::to_string(names_.size()) +
                      ") (one per name in the 'segments' attribute), found " +
                      std::to_string(low < 0 ? low : top));
}

int TokenFileDataset::segment_of(long index) const {
  if (index < 0 || index >= size())
    throw std::out_of_range("token file example index " + std::to_string(index) + " outside [0, " +
                            std::to_string(size()) + ")");
  return tf_.segment[index];
}

int TokenFileDataset::seq_len(long index) const {
  segment_of(index);  // range check
  return tf_.lengths[index];
}

void TokenFileDataset::example(long index, const ExampleRow& row) const {
  const int len = seq_len(index);
  const size_t at = static_cast<size_t>(index) * tf_.seq_len;
  std::copy_n(tf_.tokens.begin() + at, len, row.inputs);
  std::copy_n(tf_.labels.begin() + at, len, row.targets);
  if (row.distance) {
    if (tf_.distance.empty()) std::fill_n(row.distance, len, -1);
    else std::copy_n(tf_.distance.begin() + at, len, row.distance);
  }
  if (row.query_class) {
    if (tf_.query_class.empty()) std::fill_n(row.query_class, len, kNoQueryClass);
    else std::copy_n(tf_.query_class.begin() + at, len, row.query_class);
  }
}

TokenFile to_token_file(const MqarDataset& ds) {
  TokenFile tf;
  const int64_t N = ds.size(), T = ds.max_seq_len();
  tf.num_examples = N;
  tf.seq_len = T;
  tf.has_labels = true;
  tf.tokens.assign(N * T, 0);
  tf.labels.assign(N * T, kIgnoreLabel);
  tf.distance.assign(N * T, -1);
  tf.query_class.assign(N * T, kNoQueryClass);
  tf.lengths.resize(N);
  tf.segment.resize(N);
  tf.task.resize(N);
  // Each example writes its own row: the file does not depend on the thread count.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const size_t at = static_cast<size_t>(n) * T;
    ds.example(n, ExampleRow{&tf.tokens[at], &tf.labels[at], &tf.distance[at],
                             &tf.query_class[at]});
    const int s = ds.segment_of(n);
    tf.lengths[n] = ds.segments()[s].seq_len;
    tf.segment[n] = s;
    tf.task[n] = static_cast<int32_t>(ds.segments()[s].task);
  }
  tf.segment_names = ds.segment_names();
  return tf;
}

std::unique_ptr<Dataset> make_dataset(const MqarConfig& mq, Split split) {
  const std::string& file = split == Split::train  ? mq.train_file
                            : split == Split::test ? mq.test_file
                                                   : mq.valid_file;
  if (!file.empty())
    return std::make_unique<TokenFileDataset>(file, mq.vocab_size,
                                              std::string("data.") + split_name(split));
  return std::make_unique<MqarDataset>(split == Split::train  ? mq.train
                                       : split == Split::test ? mq.test
                                                              : mq.valid,
                                       mq.vocab_size, mq.power_a, mq.random_non_queries,
                                       mq.train_seed, split);
}

}  // namespace statex
