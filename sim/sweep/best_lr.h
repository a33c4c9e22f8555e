#pragma once
// Best learning rate per group of trials, a quick look while a sweep runs; the analysis's
// `lr_selection` table (statex_analysis/lr_select.py, docs/analysis.md) applies the same rule and
// is the record. A group = trials equal in every swept option except train.lr and the seeds
// (train.seed, mqar.seed). Each lr is scored over its trials: a completed trial by its best
// VALIDATION accuracy (/valid@best_accuracy) when the group's runs have a validation split
// (mqar.valid), else by its best test accuracy (root attr best_accuracy: then the choice is made on
// the numbers it reports, and selected_on says "test"); a trial whose trainer failed (results
// status failed, e.g. a non-finite loss) scores 0; unfinished trials are left out. The lr with
// the highest median score wins (ties: higher mean, then the smaller lr). Written to
// <out>/best_lr.csv with columns
//   <group options...>,best_lr,selected_on,best_median_accuracy,best_mean_accuracy,
//   seeds_completed,seeds_failed,seeds_total,grid_edge,lr_scores,trial_ids
// selected_on = validation | test; grid_edge = low | high when best_lr is the smallest / largest
// lr scored in the group (the window touches the grid edge: extend the grid), else empty;
// lr_scores = "lr:median(n[, f failed]);..." for every lr (n = scored trials; "nan(0)" when none)
// and trial_ids = the completed trials at best_lr, ';'-separated.
#include <string>
#include <vector>

#include "sim/sweep/sweep_dir.h"

namespace statex::sweep {

bool is_seed_option(const std::string& option);

// Returns the number of groups written (a group with no scored trial gets empty best_lr).
int write_best_lr(const SweepDir& dir, const std::vector<Trial>& trials,
                  const std::vector<std::string>& swept);

}  // namespace statex::sweep
