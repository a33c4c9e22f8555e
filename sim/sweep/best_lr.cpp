#include "sim/sweep/best_lr.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace statex::sweep {

bool is_seed_option(const std::string& option) { return option == "train.seed" || option == "mqar.seed"; }

int write_best_lr(const SweepDir& dir, const std::vector<Trial>& trials,
                  const std::vector<std::string>& swept) {
  std::vector<std::string> group_cols;
  for (auto& o : swept)
    if (o != "train.lr" && !is_seed_option(o)) group_cols.push_back(o);

  struct LrScore {
    double sum = 0;
    int n = 0, total = 0;
    std::vector<std::string> ids;
  };
  // group key (values of group_cols) -> lr text -> score; both keep first-seen order via index.
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
    it->second.total++;
    ResultProbe p = probe_result(dir.result(t.id));
    if (p.state == ResultProbe::State::completed && p.best_accuracy >= 0) {
      it->second.sum += p.best_accuracy;
      it->second.n++;
      it->second.ids.push_back(t.id);
    }
  }

  std::string out;
  for (auto& c : group_cols) out += csv_field(c) + ",";
  out += "best_lr,best_mean_accuracy,seeds_completed,seeds_total,lr_scores,trial_ids\n";
  for (auto& key : group_keys) {
    auto& lrs = groups[key];
    const std::pair<std::string, LrScore>* best = nullptr;
    std::string scores;
    for (auto& e : lrs) {
      char buf[64];
      if (e.second.n > 0) std::snprintf(buf, sizeof buf, "%.6g(%d)", e.second.sum / e.second.n, e.second.n);
      else std::snprintf(buf, sizeof buf, "nan(0)");
      scores += (scores.empty() ? "" : ";") + e.first + ":" + buf;
      if (e.second.n == 0) continue;
      double mean = e.second.sum / e.second.n;
      if (!best) { best = &e; continue; }
      double bmean = best->second.sum / best->second.n;
      if (mean > bmean || (mean == bmean && std::strtod(e.first.c_str(), nullptr) < std::strtod(best->first.c_str(), nullptr)))
        best = &e;
    }
    for (auto& v : key) out += csv_field(v) + ",";
    if (best) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", best->second.sum / best->second.n);
      std::string ids;
      for (auto& id : best->second.ids) ids += (ids.empty() ? "" : ";") + id;
      out += csv_field(best->first) + "," + buf + "," + std::to_string(best->second.n) + "," +
             std::to_string(best->second.total) + "," + csv_field(scores) + "," + ids + "\n";
    } else {
      out += ",,0,0," + csv_field(scores) + ",\n";
    }
  }
  write_file_atomically(dir.root() + "/best_lr.csv", out);
  return static_cast<int>(group_keys.size());
}

}  // namespace statex::sweep
