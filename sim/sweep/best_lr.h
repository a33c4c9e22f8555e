#pragma once
// Best learning rate per group of trials. A group = trials equal in every swept option except
// train.lr and the seeds (train.seed, mqar.seed). Within a group, each lr is scored by the mean
// over its completed seeds of the run's best eval accuracy (root attr best_accuracy); the lr with
// the highest mean wins (ties: the smaller lr). Written to <out>/best_lr.csv with columns
//   <group options...>,best_lr,best_mean_accuracy,seeds_completed,seeds_total,lr_scores,trial_ids
// where lr_scores = "lr:mean(n);..." for every lr of the group (n = completed seeds; "nan(0)" when
// none completed) and trial_ids = the completed trials at best_lr, ';'-separated.
#include <string>
#include <vector>

#include "sim/sweep/sweep_dir.h"

namespace statex::sweep {

bool is_seed_option(const std::string& option);

// Returns the number of groups written (a group with no completed trial gets empty best_lr).
int write_best_lr(const SweepDir& dir, const std::vector<Trial>& trials,
                  const std::vector<std::string>& swept);

}  // namespace statex::sweep
