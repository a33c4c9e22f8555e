// statex data: write the generated train and/or test set of a task config to HDF5 token files
// (layout in docs/results_format.md, "Token file") and print a few examples readably. What it
// writes, `statex train --data.train/--data.test` reads back as bit-for-bit the same batches.
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "sim/cli/commands.h"
#include "sim/cli/input_checks.h"
#include "sim/core/options.h"
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"
#include "sim/io/token_file.h"
#include "sim/task/mqar.h"
#include "sim/task/token_dataset.h"

namespace po = boost::program_options;

namespace statex::cli {
namespace {

// The whole set with its provenance attributes.
TokenFile data_file(const MqarDataset& ds, const ExperimentConfig& cfg, Split split) {
  TokenFile tf = to_token_file(ds);
  ExperimentConfig copy = cfg;  // OptionRegistry binds to a mutable config
  tf.info = {{"generator", "statex data"},
             {"split", split_name(split)},
             {"config_ini", OptionRegistry(copy).to_ini()},
             {"vocab_size", std::to_string(ds.vocab_size())},
             {"seed", std::to_string(cfg.mqar.train_seed)}};
  return tf;
}

// One example, one token per item: kN / vN keys and values of the context (aN bN the two key
// tokens of a compositional key), "|" between passes, then the query region: "q37->v140" at a
// labelled query, "." for a blank 0 and "~N" for a random filler token.
void print_example(const MqarDataset& ds, const TokenFile& tf, int64_t n) {
  const int s = tf.segment[n];
  const MqarSegment& seg = ds.segments()[s];
  const int T = tf.lengths[n], C1 = context_length(seg), C = seg.passes * C1;
  const size_t at = static_cast<size_t>(n) * tf.seq_len;
  const int32_t* tok = &tf.tokens[at];
  const int32_t* lab = &tf.labels[at];
  std::printf("example %lld  segment %d (%s), T=%d\n", (long long)n, s,
              tf.segment_names[s].c_str(), T);
  std::vector<std::string> items;
  for (int t = 0; t < T; ++t) {
    std::string item;
    if (t < C) {
      const int r = t % C1;
      if (r == 0 && t > 0) items.push_back("|");
      const char* role = seg.task != Task::compositional ? (r % 2 == 0 ? "k" : "v")
                         : r % 3 == 0                      ? "a"
                         : r % 3 == 1                      ? "b"
                                                           : "v";
      item = role + std::to_string(tok[t]);
    } else if (lab[t] != kIgnoreLabel) {
      item = "q" + std::to_string(tok[t]) + "->v" + std::to_string(lab[t]);
      if (tf.query_class[at + t] >= 0)
        item += std::string("(") + query_class_name(tf.query_class[at + t]) + ")";
    } else if (seg.task == Task::compositional && t + 1 < T && lab[t + 1] != kIgnoreLabel) {
      item = "a" + std::to_string(tok[t]);
    } else {
      item = tok[t] == 0 ? "." : "~" + std::to_string(tok[t]);
    }
    items.push_back(item);
  }
  std::string line = " ";
  for (const std::string& item : items) {
    if (line.size() + item.size() > 98) {
      std::printf("%s\n", line.c_str());
      line = " ";
    }
    line += " " + item;
  }
  std::printf("%s\n", line.c_str());
}

}  // namespace

int cmd_data(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string train_out, test_out, valid_out;
  int show = 3;
  bool overwrite = false;
  po::options_description extra("Data options");
  extra.add_options()("train-out", po::value<std::string>(&train_out),
                      "write the train set (mqar.train) to this token file")(
      "test-out", po::value<std::string>(&test_out),
      "write the test set (mqar.test) to this token file")(
      "valid-out", po::value<std::string>(&valid_out),
      "write the validation set (mqar.valid) to this token file")(
      "show", po::value<int>(&show)->default_value(3),
      "print this many examples of each written set (0 = none)")(
      "overwrite", po::bool_switch(&overwrite), "replace existing output files");
  auto vm = parse_experiment(
      argc, argv, cfg, extra,
      "usage: statex data [--config FILE.ini] [--train-out TRAIN.h5] [--test-out TEST.h5] "
      "[--valid-out VALID.h5] [--show N] [--overwrite] [options]\n"
      "Writes the generated train/test/validation set of the mqar.* options (any task,\n"
      "docs/tasks.md) to HDF5 token files that `statex train --data.train/--data.test/\n"
      "--data.valid` and `statex eval --tokens`\n"
      "read, and prints a few examples (kN/vN context pairs, qN->vM labelled queries).");
  if (vm.count("help")) return 0;
  if (train_out.empty() && test_out.empty() && valid_out.empty())
    throw ConfigError("--train-out / --test-out / --valid-out: give at least one output file");
  if (show < 0) throw ConfigError("--show must be >= 0 (got " + std::to_string(show) + ")");
  if (!cfg.mqar.train_file.empty() || !cfg.mqar.test_file.empty() ||
      !cfg.mqar.valid_file.empty())
    throw ConfigError("data.train / data.test / data.valid: statex data writes generated sets; "
                      "drop the data.* options (a token file is already data)");
  if (train_out.empty()) cfg.mqar_train = cfg.mqar_test;  // unused: don't validate its default
  if (test_out.empty()) cfg.mqar_test = cfg.mqar_train;
  finalize(cfg);
  if (!valid_out.empty() && cfg.mqar.valid.empty())
    throw ConfigError("--valid-out: mqar.valid is empty; give the validation segments, e.g. "
                      "--mqar.valid 64:4:1000");
  // Output rules of every command (sim/io/output_guard.h): distinct paths, no silent replace.
  const std::string config = vm.count("config") ? vm["config"].as<std::string>() : "";
  check_distinct_paths({{"--config", config, false},
                        {"--train-out", train_out, true},
                        {"--test-out", test_out, true},
                        {"--valid-out", valid_out, true}});
  std::vector<std::unique_ptr<OutputLock>> locks;
  for (auto [option, path] : {std::pair{"--train-out", train_out}, {"--test-out", test_out},
                              {"--valid-out", valid_out}}) {
    if (path.empty()) continue;
    check_writable(path, option);
    locks.push_back(std::make_unique<OutputLock>(option, path));
    refuse_existing(option, path, overwrite);
  }

  // Each set is generated whole before it is written: its memory is estimated first (a huge
  // count used to end in std::bad_alloc or a size overflow).
  for (auto [option, segs, path] : {std::tuple{"mqar.train", &cfg.mqar.train, train_out},
                                    {"mqar.test", &cfg.mqar.test, test_out},
                                    {"mqar.valid", &cfg.mqar.valid, valid_out}})
    if (!path.empty()) check_set_memory(*segs, option, /*HDF5 write buffers=*/4.0);

  for (auto [split, path] : {std::pair{Split::train, train_out}, {Split::test, test_out},
                             {Split::valid, valid_out}}) {
    if (path.empty()) continue;
    const auto& mq = cfg.mqar;
    const auto& segs = split == Split::train ? mq.train : split == Split::test ? mq.test : mq.valid;
    MqarDataset ds(segs, mq.vocab_size, mq.power_a, mq.random_non_queries, mq.train_seed, split);
    TokenFile tf = data_file(ds, cfg, split);
    write_token_file(path, tf);
    std::printf("wrote %s set: %lld examples x %lld positions (%s) to %s\n", split_name(split),
                (long long)tf.num_examples, (long long)tf.seq_len,
                format_segments(segs).c_str(), path.c_str());
    for (int64_t n = 0; n < std::min<int64_t>(show, tf.num_examples); ++n)
      print_example(ds, tf, n);
  }
  return 0;
}

}  // namespace statex::cli
