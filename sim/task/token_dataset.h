#pragma once
// Training / test examples read from an HDF5 token file (--data.train / --data.test; layout in
// docs/results_format.md, "Token file"), for training on data from `statex data`, Zoology or any
// other generator. Row i of the file is example i; batches are drawn exactly as from the
// generator (dataset.h: step s takes rows s*B .. s*B+B-1 modulo N), so a file written by
// `statex data` gives bit-for-bit the generator's batches.
#include <memory>
#include <string>

#include "sim/io/token_file.h"
#include "sim/task/dataset.h"
#include "sim/task/mqar.h"

namespace statex {

class TokenFileDataset : public Dataset {
 public:
  // Reads and checks `path` against the model vocabulary: labels present, tokens and labels in
  // range, lengths in [1, T] with only padding (token 0, no label) after them, segment ids
  // consistent, at least one labelled position. Errors are ConfigError naming `option`
  // (data.train / data.test) and the file.
  TokenFileDataset(const std::string& path, int vocab_size, const std::string& option);

  long size() const override { return static_cast<long>(tf_.num_examples); }
  int num_segments() const override { return static_cast<int>(names_.size()); }
  std::vector<std::string> segment_names() const override { return names_; }
  int max_seq_len() const override { return max_len_; }
  int segment_of(long index) const override;
  int seq_len(long index) const override;
  void example(long index, const ExampleRow& row) const override;
  const TokenFile& file() const { return tf_; }
  const std::string& option() const { return option_; }  // data.train / data.test / data.valid

 private:
  TokenFile tf_;
  std::string option_;
  std::vector<std::string> names_;
  int max_len_ = 0;
};

// A generated set as a token file, every field filled (tokens, labels, lengths, segment and task
// ids, distances, query classes, segment names); rows padded to the longest example. What
// `statex data` writes; TokenFileDataset reads it back as the same examples.
TokenFile to_token_file(const MqarDataset& ds);

// The dataset a run trains (Split train), evaluates (Split test) or validates (Split valid) on:
// the token file of data.train / data.test / data.valid when given, else the generator of
// mqar.train / mqar.test / mqar.valid.
std::unique_ptr<Dataset> make_dataset(const MqarConfig& cfg, Split split);

}  // namespace statex
