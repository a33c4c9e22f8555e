// statex grad: loss, logits and every parameter gradient of a checkpoint on a token file, for
// parity checks against an outside implementation (tests/torch/). All examples of the token
// file run as ONE batch; the loss is the mean cross-entropy over the labelled positions only.
//
// Output (HDF5, written atomically):
//   /  attrs format = "statex-sim grad", format_version = 1, checkpoint, token_file,
//      loss (float64, nats), labelled_positions (int64), num_examples, seq_len, vocab_size
//   /logits      float32 [M, V]  logits at the labelled positions, row-major (example, position)
//   /positions   int64   [M, 2]  (example, position) of each logits row
//   /grads/<name> float32, the parameter's shape: d loss / d parameter (state_dict names)
#include <omp.h>

#include <cstdio>

#include "sim/cli/commands.h"
#include "sim/cli/input_checks.h"
#include "sim/core/backend.h"
#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/io/output_guard.h"
#include "sim/io/h5.h"
#include "sim/io/results_file.h"
#include "sim/io/token_file.h"
#include "sim/model/model.h"
#include "sim/task/mqar.h"
#include "sim/train/device_batch.h"

namespace po = boost::program_options;

namespace statex::cli {

int cmd_grad(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string checkpoint, tokens_path, out;
  bool overwrite = false;
  po::options_description extra("Grad options");
  extra.add_options()("checkpoint", po::value<std::string>(&checkpoint),
                      "checkpoint whose gradients to compute")(
      "tokens", po::value<std::string>(&tokens_path),
      "HDF5 token file with /tokens [N,T] and /labels [N,T] (-100 = unlabelled); all N "
      "examples form one batch")(
      "out,o", po::value<std::string>(&out)->default_value("grad.h5"), "output file (HDF5)")(
      "overwrite", po::bool_switch(&overwrite), "replace an existing --out");
  auto vm = parse_experiment(
      argc, argv, cfg, extra,
      "usage: statex grad --checkpoint CK.h5 --tokens TOK.h5 [--out GRAD.h5]",
      {"train.gla_chunk", "train.ssd_chunk", "train.threads", "device"});
  if (vm.count("help")) return 0;
  if (checkpoint.empty()) throw ConfigError("--checkpoint: give the checkpoint to differentiate");
  if (tokens_path.empty()) throw ConfigError("--tokens: give a token file with /labels");
  auto out_lock = guard_output({{"--config", vm.count("config") ? vm["config"].as<std::string>() : "", false},
                                {"--checkpoint", checkpoint, false},
                                {"--tokens", tokens_path, false}},
                               "--out", out, overwrite);
  validate(cfg.train);
  Checkpoint ck;
  try {
    ck = load_checkpoint(checkpoint);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--checkpoint: ") + e.what());
  }
  // Only train.* (device, threads, chunk lengths) matters here; the mqar.* options are unused,
  // so they are not validated against the checkpoint's vocabulary.
  validate(cfg.train);

  TokenFile tf;
  try {
    tf = read_token_file(tokens_path);
    check_token_range(tf, ck.model.vocab_size, tokens_path);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--tokens: ") + e.what());
  }
  if (!tf.has_labels)
    throw ConfigError("--tokens: token file '" + tokens_path +
                      "' has no /labels; the loss needs labelled positions");
  // All examples form one batch: the model's memory for it is estimated first.
  check_memory(ck.model, tf.num_examples * tf.seq_len, /*with_optimizer=*/false,
               "the token file's examples (one batch)");
  const int B = int(tf.num_examples), T = int(tf.seq_len), V = ck.model.vocab_size;

  // One batch: every labelled position, in (example, position) order.
  MqarBatch mb;
  mb.B = B;
  mb.T = T;
  mb.inputs.assign(tf.tokens.begin(), tf.tokens.end());
  std::vector<int64_t> positions;
  for (int r = 0; r < B * T; ++r) {
    if (tf.labels[r] == kIgnoreLabel) continue;
    mb.label_row.push_back(r);
    mb.label_target.push_back(tf.labels[r]);
    positions.push_back(r / T);
    positions.push_back(r % T);
  }
  const int M = mb.num_labels();
  if (M == 0)
    throw ConfigError("--tokens: token file '" + tokens_path + "' has no labelled position");

  if (cfg.train.threads > 0) omp_set_num_threads(cfg.train.threads);
  auto be = make_backend(cfg.train.device);
  Model model(ck.model, *be, B * T, cfg.train.gla_chunk, cfg.train.ssd_chunk);
  // The checkpoint's table may list parameters in another order than the model's: copy by name.
  std::vector<float> params(model.n_params());
  for (const auto& e : model.table().entries()) {
    if (!ck.table.contains(e.name) || ck.table.at(e.name).shape != e.shape)
      throw ConfigError("--checkpoint: '" + checkpoint + "' lacks parameter '" + e.name +
                        "' with the shape its model config implies");
    const ParamEntry& src = ck.table.at(e.name);
    std::copy_n(ck.params.begin() + src.offset, e.numel(), params.begin() + e.offset);
  }
  model.set_params(params);
  DeviceBatchBuffer buf(*be);
  DeviceBatch db = buf.upload(mb);

  model.zero_grads();
  const float loss = model.forward(db);
  std::vector<float> logits(size_t(M) * V);
  be->to_host(logits.data(), model.label_logits(), logits.size() * sizeof(float));
  model.backward(db);
  const std::vector<float> grads = model.get_grads();

  h5::write_atomically(out, [&](hid_t file) {
    h5::write_attr(file, "format", "statex-sim grad");
    h5::write_attr(file, "format_version", int32_t(1));
    h5::write_attr(file, "checkpoint", checkpoint);
    h5::write_attr(file, "token_file", tokens_path);
    h5::write_attr(file, "loss", double(loss));
    h5::write_attr(file, "loss_unit", "nats");
    h5::write_attr(file, "labelled_positions", int64_t(M));
    h5::write_attr(file, "num_examples", int64_t(B));
    h5::write_attr(file, "seq_len", int64_t(T));
    h5::write_attr(file, "vocab_size", int64_t(V));
    h5::write_dataset<float>(file, "logits", logits.data(), {M, V});
    h5::write_dataset<int64_t>(file, "positions", positions.data(), {M, 2});
    h5::Handle g = h5::create_group(file, "grads", /*track_order=*/true);
    for (const auto& e : model.table().entries())
      h5::write_dataset<float>(g, e.name, grads.data() + e.offset, e.shape);
  });
  std::printf("loss %.6f over %d labelled positions of %d examples (T=%d); wrote %s\n", loss, M, B,
              T, out.c_str());
  return 0;
}

}  // namespace statex::cli
