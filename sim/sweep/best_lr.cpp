#include "sim/sweep/best_lr.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace statex::sweep {

bool is_seed_option(const std::string& option) { return option == "train.seed" || option == "mqar.seed"; }

namespace {

// One lr of a group: the selection scores of its trials (completed: best validation accuracy,
// or best test accuracy without a validation split; failed: 0) and the test-based scores.
struct LrScore {
  std::vector<double> valid, test;  // per scored trial (completed or failed)
  std::vector<bool> has_valid;      // per completed trial
  int completed = 0, failed = 0, total = 0;
  std::vector<std::string> ids;     // completed trials
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

int write_best_lr(const SweepDir& dir, const std::vector<Trial>& trials,
                  const std::vector<std::string>& swept) {
  std::vector<std::string> group_cols;
  for (auto& o : swept)
    if (o != "train.lr" && !is_seed_option(o)) group_cols.push_back(o);

  // group key (values of group_cols) -> lr text -> scores; both keep first-seen order.
  std::vector<std::vector<std::string>> group_keys;
  std::map<std::vector<std::string>, std::vector<std::pair<std::string, LrScore>>> groups;
  for (auto& t : trials) {
    std::vector<std::string> key;
    for (auto& c : group_cols) key.push_back(t.config.count(c) ? t.config.at(c) : "");
    if (!groups.count(key)) group_keys.push_back(key);
    auto& lrs = groups[key];
    std::string lr = t.config.count("train.lr") ? t.config.at("train.lr") : "default";
    auto it = lrs.begin();
    while (it != lrs.end() && it->first != lr) ++it;
    if (it == lrs.end()) it = lrs.insert(lrs.end(), {lr, LrScore{}});
    LrScore& sc = it->second;
    sc.total++;
    ResultProbe p = probe_result(dir.result(t.id));
    if (p.state == ResultProbe::State::completed && p.best_accuracy >= 0) {
      sc.test.push_back(p.best_accuracy);
      sc.valid.push_back(p.has_valid ? p.best_valid_accuracy : p.best_accuracy);
      sc.has_valid.push_back(p.has_valid && p.best_valid_accuracy >= 0);
      sc.completed++;
      sc.ids.push_back(t.id);
    } else if (p.state == ResultProbe::State::failed) {
      // The trainer itself failed (e.g. a non-finite loss): the lr scores 0 for this seed.
      sc.test.push_back(0);
      sc.valid.push_back(0);
      sc.failed++;
    }
  }

  std::string out;
  for (auto& c : group_cols) out += csv_field(c) + ",";
  out += "best_lr,selected_on,best_median_accuracy,best_mean_accuracy,seeds_completed,"
         "seeds_failed,seeds_total,grid_edge,lr_scores,trial_ids\n";
  for (auto& key : group_keys) {
    auto& lrs = groups[key];
    // Validation when every completed trial of the group has a validation split.
    bool on_valid = false, any = false;
    for (auto& e : lrs)
      for (bool v : e.second.has_valid) {
        on_valid = any ? (on_valid && v) : v;
        any = true;
      }
    auto scores_of = [&](const LrScore& s) -> const std::vector<double>& {
      return on_valid ? s.valid : s.test;
    };
    const std::pair<std::string, LrScore>* best = nullptr;
    double best_median = 0, best_mean = 0, lo = INFINITY, hi = -INFINITY;
    std::string scores;
    for (auto& e : lrs) {
      const std::vector<double>& v = scores_of(e.second);
      std::string text = v.empty() ? "nan(0)" : fmt(median_of(v)) + "(" + std::to_string(v.size());
      if (!v.empty()) text += e.second.failed ? ", " + std::to_string(e.second.failed) + " failed)" : ")";
      scores += (scores.empty() ? "" : ";") + e.first + ":" + text;
      if (v.empty()) continue;
      const double lr = std::strtod(e.first.c_str(), nullptr);
      lo = std::min(lo, lr), hi = std::max(hi, lr);
      const double median = median_of(v), mean = mean_of(v);
      const bool better = !best || median > best_median ||
                          (median == best_median &&
                           (mean > best_mean ||
                            (mean == best_mean &&
                             lr < std::strtod(best->first.c_str(), nullptr))));
      if (better) best = &e, best_median = median, best_mean = mean;
    }
    for (auto& v : key) out += csv_field(v) + ",";
    if (best) {
      const double lr = std::strtod(best->first.c_str(), nullptr);
      const std::string edge = lo == hi ? "" : lr == lo ? "low" : lr == hi ? "high" : "";
      std::string ids;
      for (auto& id : best->second.ids) ids += (ids.empty() ? "" : ";") + id;
      out += csv_field(best->first) + "," + (on_valid ? "validation" : "test") + "," +
             fmt(best_median) + "," + fmt(best_mean) + "," +
             std::to_string(best->second.completed) + "," + std::to_string(best->second.failed) +
             "," + std::to_string(best->second.total) + "," + edge + "," + csv_field(scores) +
             "," + ids + "\n";
    } else {
      out += ",,,,0,0,0,," + csv_field(scores) + ",\n";
    }
  }
  write_file_atomically(dir.root() + "/best_lr.csv", out);
  return static_cast<int>(group_keys.size());
}

}  // namespace statex::sweep
