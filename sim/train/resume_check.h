#pragma once
// What may change when a run is continued with --resume (docs/exit_codes.md, "Resume"). A
// resumed run must be the same experiment: every option that changes the data, the model or
// the optimisation must match the checkpoint's. Only options that change neither (threads,
// device, how often to evaluate / checkpoint, the early-stop target) may differ; those changes
// are listed on stderr and in the results file's resume_log.
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace statex {

// Options that may differ between a run and its --resume.
const std::vector<std::string>& options_resume_may_change();

// Compares the checkpoint's config (its INI text, trainer attribute config_ini) with `now`.
// Throws ConfigError naming every option that must not change (with both values); returns
// "option: old -> new" for each allowed change.
std::vector<std::string> resume_changes(const std::string& checkpoint_ini,
                                        const ExperimentConfig& now,
                                        const std::string& checkpoint_path);

}  // namespace statex
