#pragma once
// Checks of user input that need more than one option at a time, run by the subcommands before
// anything is allocated or written (errors: ConfigError, exit 2, naming the option and the fix).
#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace statex::cli {

// Refuses a model / batch whose memory need (parameters, gradients, AdamW moments, activations
// of `tokens_per_batch` tokens, label logits) exceeds this machine's memory or the 2^31-element
// limit of one buffer; the message gives the estimate and the options to reduce, naming
// `batch_option` as what sets the batch (train.batch_size; --batch for eval).
void check_memory(const ModelConfig& m, int64_t tokens_per_batch, bool with_optimizer,
                  const std::string& batch_option = "train.batch_size");

// Bytes a set of `examples` rows of `seq_len` positions takes as a TokenFile in memory (tokens,
// labels, distances and query classes [N, T], lengths / segment / task [N]; int32 each).
double token_set_bytes(double examples, double seq_len);

// The memory estimate of a generated set (statex data, statex eval's MQAR test set): refuses one
// that would not fit, naming `option` (mqar.train / mqar.test / mqar.valid) and its count.
// `extra_bytes_per_position` adds what the command keeps per position beyond the set.
void check_set_memory(const std::vector<MqarSegment>& segs, const std::string& option,
                      double extra_bytes_per_position = 0);

// statex.* options given explicitly (not defaulted in `vm`) that the model family ignores:
// statex.gla_heads for Mamba2, statex.state_mult for GLA.
void check_statex_family(const boost::program_options::variables_map& vm, const ModelConfig& m);

// An expansion that leaves every selected layer's shape unchanged would only re-initialise
// (reinit) or copy (inherit) trained mixers: refused, naming the option to change.
void check_expansion_changes(const ModelConfig& before, const ModelConfig& after,
                             const std::vector<int>& layers, const StatexConfig& sx);

// Warnings on stderr for settings that are legal but almost certainly not meant.
void warn_schedule(const ExperimentConfig& cfg);

}  // namespace statex::cli
