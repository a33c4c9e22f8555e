// Resume compatibility of options: see resume_check.h.
#include "sim/train/resume_check.h"

#include <algorithm>

#include "sim/core/options.h"

namespace statex {

const std::vector<std::string>& options_resume_may_change() {
  static const std::vector<std::string> names = {"train.threads", "device", "train.eval_every",
                                                 "train.checkpoint_every", "train.target_accuracy"};
  return names;
}

std::vector<std::string> resume_changes(const std::string& checkpoint_ini,
                                        const ExperimentConfig& now,
                                        const std::string& checkpoint_path) {
  std::map<std::string, std::string> then;
  try {
    then = config_values_from_ini(checkpoint_ini);
  } catch (const std::exception& e) {
    throw ConfigError("--resume: checkpoint '" + checkpoint_path +
                      "' has a damaged config_ini attribute: " + e.what());
  }
  ExperimentConfig copy = now;
  std::map<std::string, std::string> current = OptionRegistry(copy).values();
  const auto& may = options_resume_may_change();
  std::vector<std::string> refused, allowed;
  for (const auto& [name, value] : current) {
    auto it = then.find(name);
    if (it == then.end() || it->second == value) continue;
    std::string change = name + ": " + it->second + " -> " + value;
    (std::find(may.begin(), may.end(), name) != may.end() ? allowed : refused).push_back(change);
  }
  if (!refused.empty()) {
    std::string msg = "--resume: these options differ from the run in checkpoint '" +
                      checkpoint_path + "' (give the original values, or start a new run with " +
                      "--init-from): ";
    for (size_t i = 0; i < refused.size(); ++i) msg += (i ? "; " : "") + refused[i];
    throw ConfigError(msg);
  }
  return allowed;
}

}  // namespace statex
