// statex eval: run a checkpoint on a token file (or a generated MQAR test set) and write logits,
// predictions and accuracy to HDF5 (layout in docs/results_format.md, "Eval output file").
// The MQAR test set comes from the mqar.* options, so the same options as training give the
// same test set.
#include <cmath>
#include <cstdio>
#include <limits>

#include "sim/cli/commands.h"
#include "sim/cli/input_checks.h"
#include "sim/core/backend.h"
#include "sim/core/memory_budget.h"
#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"
#include "sim/io/token_file.h"
#include "sim/model/model.h"
#include "sim/task/mqar.h"
#include "sim/train/device_batch.h"

namespace po = boost::program_options;

namespace statex::cli {

namespace {

// The MQAR test set of the config as a token file (labels = targets).
TokenFile mqar_tokens(const ExperimentConfig& cfg) {
  const auto& mq = cfg.mqar;
  MqarDataset ds(mq.test, mq.vocab_size, mq.power_a, mq.random_non_queries, mq.train_seed,
                 Split::test);
  MqarBatch b = make_batch(ds, 0, int(ds.size()), /*wrap=*/false);
  TokenFile tf;
  tf.num_examples = b.B;
  tf.seq_len = b.T;
  tf.tokens.assign(b.inputs.begin(), b.inputs.end());
  tf.has_labels = true;
  std::vector<int> dense = b.dense_targets();
  tf.labels.assign(dense.begin(), dense.end());
  return tf;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string checkpoint, tokens_path, out;
  bool all_positions = false, overwrite = false;
  int batch = 64;
  po::options_description extra("Eval options");
  extra.add_options()("checkpoint", po::value<std::string>(&checkpoint), "checkpoint to evaluate")(
      "tokens", po::value<std::string>(&tokens_path),
      "HDF5 token file: int32 tokens [N,T], optional int32 labels [N,T] (-100 = unlabelled); "
      "default: the MQAR test set of the mqar.* options")(
      "out,o", po::value<std::string>(&out)->default_value("eval.h5"), "output file (HDF5)")(
      "overwrite", po::bool_switch(&overwrite), "replace an existing --out")(
      "all-positions", po::bool_switch(&all_positions),
      "store logits at every position (default: labelled positions only)")(
      "batch", po::value<int>(&batch)->default_value(64), "examples per forward pass");
  auto vm = parse_experiment(argc, argv, cfg, extra,
                             "usage: statex eval --checkpoint CK.h5 [--tokens FILE.h5] [--out OUT.h5]",
                             {"mqar.test", "mqar.power_a", "mqar.random_non_queries", "mqar.seed",
                              "train.gla_chunk", "train.ssd_chunk", "device"});
  if (vm.count("help")) return 0;
  if (checkpoint.empty()) throw ConfigError("--checkpoint: give the checkpoint to evaluate");
  if (batch < 1) throw ConfigError("--batch must be >= 1");
  auto out_lock = guard_output({{"--config", vm.count("config") ? vm["config"].as<std::string>() : "", false},
                                {"--checkpoint", checkpoint, false},
                                {"--tokens", tokens_path, false}},
                               "--out", out, overwrite);
  validate(cfg.train);
  Checkpoint ck = load_checkpoint(checkpoint);
  cfg.model.vocab_size = ck.model.vocab_size;
  cfg.mqar_train = cfg.mqar_test;  // eval never uses the train set; don't validate its default
  // With --tokens the mqar.* options are unused: they are not checked against the vocabulary.
  if (tokens_path.empty()) finalize(cfg);

  const int V = ck.model.vocab_size;
  if (tokens_path.empty()) {
    // The whole test set is generated at once, then scored with its outputs (predictions per
    // position; logits per labelled position, or per position with --all-positions).
    int64_t n = 0, labels = 0;
    for (const MqarSegment& s : cfg.mqar.test) n += s.count, labels += s.count * s.num_kv;
    double per_position = 4.0 * 4 + 4;  // the generated batch + predictions
    if (all_positions) per_position += 4.0 * V;
    check_set_memory(cfg.mqar.test, "mqar.test", per_position);
    if (!all_positions)
      require_memory(double(labels) * (4.0 * V + 36), "the logits of mqar.test's labelled queries",
                     std::to_string(labels) + " queries x model.vocab_size " + std::to_string(V),
                     "lower the counts of mqar.test's segments");
    if (n > std::numeric_limits<int>::max())
      throw ConfigError("mqar.test has " + std::to_string(n) + " examples; statex eval takes at " +
                        "most 2^31-1: lower the counts of mqar.test's segments");
  }
  TokenFile tf = tokens_path.empty() ? mqar_tokens(cfg) : read_token_file(tokens_path);
  check_token_range(tf, ck.model.vocab_size, tokens_path.empty() ? "mqar.test" : tokens_path);
  const int T = int(tf.seq_len);
  int64_t labelled_rows = 0;
  for (int32_t l : tf.labels) labelled_rows += l != kIgnoreLabel;
  const double out_rows = all_positions ? double(tf.num_examples) * T : double(labelled_rows);
  require_memory(out_rows * (4.0 * V + 16) + double(tf.num_examples) * T * 4,
                 "the eval output (" + std::string(all_positions ? "logits at every position"
                                                                 : "logits at the labelled positions") +
                     ")",
                 gib(out_rows * 4.0 * V) + " of logits: " + std::to_string(int64_t(out_rows)) +
                     " rows x model.vocab_size " + std::to_string(V),
                 all_positions ? "drop --all-positions, or evaluate fewer examples"
                               : "evaluate fewer examples");
  check_memory(ck.model, int64_t(batch) * T, /*with_optimizer=*/false, "--batch");

  auto be = make_backend(cfg.train.device);
  Model model(ck.model, *be, batch * T, cfg.train.gla_chunk, cfg.train.ssd_chunk);
  model.set_params(ck.params);
  DeviceBatchBuffer buf(*be);

  EvalOutput res;
  res.checkpoint = checkpoint;
  res.token_file = tokens_path.empty() ? "mqar.test=" + cfg.mqar_test : tokens_path;
  res.num_examples = tf.num_examples;
  res.seq_len = T;
  res.vocab_size = V;
  res.all_positions = all_positions;
  res.has_labels = tf.has_labels;
  res.predictions.assign(tf.tokens.size(), 0);
  res.example_accuracy.assign(tf.num_examples, std::numeric_limits<float>::quiet_NaN());
  res.logits.reserve(size_t(out_rows) * V);
  double loss_sum = 0, acc_sum = 0;
  int64_t correct = 0, labelled = 0, examples_with_labels = 0;

  // Every position goes through the LM head, so predictions cover the whole sequence.
  std::vector<float> logits, losses;
  std::vector<int> preds;
  for (int64_t first = 0; first < tf.num_examples; first += batch) {
    const int B = int(std::min<int64_t>(batch, tf.num_examples - first));
    MqarBatch mb;
    mb.B = B;
    mb.T = T;
    mb.inputs.assign(tf.tokens.begin() + first * T, tf.tokens.begin() + (first + B) * T);
    for (int r = 0; r < B * T; ++r) {
      int lab = tf.has_labels ? tf.labels[first * T + r] : kIgnoreLabel;
      mb.label_row.push_back(r);
      mb.label_target.push_back(lab == kIgnoreLabel ? 0 : lab);
    }
    DeviceBatch db = buf.upload(mb);
    model.forward(db);
    const int M = db.M;
    preds.resize(M);
    losses.resize(M);
    logits.resize(size_t(M) * V);
    be->to_host(preds.data(), model.label_preds(), M * sizeof(int));
    be->to_host(losses.data(), model.label_losses(), M * sizeof(float));
    be->to_host(logits.data(), model.label_logits(), logits.size() * sizeof(float));
    for (int b = 0; b < B; ++b) {
      int64_t ex_correct = 0, ex_labels = 0;
      for (int t = 0; t < T; ++t) {
        const int r = b * T + t;
        const int64_t flat = (first + b) * T + t;
        res.predictions[flat] = preds[r];
        const bool has = tf.has_labels && tf.labels[flat] != kIgnoreLabel;
        if (all_positions || has) {
          res.logits.insert(res.logits.end(), logits.begin() + size_t(r) * V,
                            logits.begin() + size_t(r + 1) * V);
          if (!all_positions) {
            res.positions.push_back(first + b);
            res.positions.push_back(t);
          }
        }
        if (has) {
          ++ex_labels;
          ex_correct += preds[r] == tf.labels[flat];
          loss_sum += losses[r];
        }
      }
      if (ex_labels > 0) {
        float a = float(ex_correct) / float(ex_labels);
        res.example_accuracy[first + b] = a;
        acc_sum += a;
        ++examples_with_labels;
      }
      correct += ex_correct;
      labelled += ex_labels;
    }
  }
  res.labelled_positions = labelled;
  if (labelled > 0) {
    res.accuracy = float(acc_sum / double(examples_with_labels));
    res.token_accuracy = float(double(correct) / double(labelled));
    res.loss = float(loss_sum / double(labelled));
  }
  write_eval_output(out, res);
  std::printf("evaluated %lld examples of length %d: accuracy %.4f (token accuracy %.4f, loss %.4f) "
              "over %lld labelled positions; wrote %s\n",
              (long long)tf.num_examples, T, res.accuracy, res.token_accuracy, res.loss,
              (long long)labelled, out.c_str());
  return 0;
}

}  // namespace statex::cli
