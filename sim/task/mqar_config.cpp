// MqarConfig validation and the "[task:]T:K:count[:opt=v...][,...]" segment syntax
// (sim/core/config.h, docs/tasks.md).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "sim/core/config.h"
#include "sim/task/mqar.h"

namespace statex {
namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// A non-negative decimal integer <= max_value; anything else is a syntax error for `what`.
long parse_count(const std::string& field, long max_value, const std::string& context,
                 const char* what) {
  const std::string f = trim(field);
  if (f.empty())
    throw ConfigError(context + ": " + what + " is missing; expected T:K:count, e.g. 64:4:20000");
  long v = 0;
  for (char c : f) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      throw ConfigError(context + ": " + what + " '" + f + "' is not a non-negative integer; "
                        "expected T:K:count, e.g. 64:4:20000");
    const int d = c - '0';
    if (v > (max_value - d) / 10)
      throw ConfigError(context + ": " + what + " '" + f + "' is too large (max " +
                        std::to_string(max_value) + ")");
    v = v * 10 + d;
  }
  return v;
}

// "key=value" option of a segment: updates (forgetting only), passes (every task) or grid
// (compositional only). Every field is checked here, for every kind: one that does not apply to
// the segment's task, a repeated one and a value out of range are errors naming the field (they
// used to be accepted: updates=0 / grid=0 on plain MQAR, grid=0 meaning the default grid, the
// last of two values winning).
void parse_segment_option(const std::string& field, MqarSegment& seg, const std::string& context,
                          std::vector<std::string>& seen) {
  const size_t eq = field.find('=');
  const std::string key = trim(field.substr(0, eq));
  if (eq == std::string::npos || (key != "updates" && key != "passes" && key != "grid"))
    throw ConfigError(context + ": '" + field + "' is not one of updates=U, passes=p, grid=g "
                      "(docs/tasks.md)");
  for (const std::string& k : seen)
    if (k == key)
      throw ConfigError(context + ": " + key + "= is given twice; give each field once");
  seen.push_back(key);
  const std::string task = task_name(seg.task);
  if (key == "updates" && seg.task != Task::forgetting)
    throw ConfigError(context + " sets updates=, which only the forgetting task takes (this "
                      "segment is " + task + "); drop it, or write forgetting:T:K:count:updates=U");
  if (key == "grid" && seg.task != Task::compositional)
    throw ConfigError(context + " sets grid=, which only the compositional task takes (this "
                      "segment is " + task + "); drop it, or write compositional:T:K:count:grid=g");
  constexpr long int_max = std::numeric_limits<int>::max();
  const int v = static_cast<int>(parse_count(field.substr(eq + 1), int_max, context, key.c_str()));
  if (key == "passes" && v < 1)
    throw ConfigError(context + ": passes=" + std::to_string(v) + " must be >= 1 (1 = the "
                      "context once, no repetition)");
  if (key == "grid" && v < 1)
    throw ConfigError(context + ": grid=" + std::to_string(v) + " must be >= 1 (a g x g grid "
                      "with g*g >= K); omit grid= for Zoology's full grid g = sqrt(K)");
  (key == "updates" ? seg.updates : key == "passes" ? seg.passes : seg.grid) = v;
}

std::vector<std::string> split_fields(const std::string& item) {
  std::vector<std::string> f;
  size_t start = 0;
  while (true) {
    const size_t c = item.find(':', start);
    f.push_back(trim(item.substr(start, c == std::string::npos ? std::string::npos : c - start)));
    if (c == std::string::npos) return f;
    start = c + 1;
  }
}

MqarSegment parse_one_segment(const std::string& item, const std::string& context) {
  std::vector<std::string> f = split_fields(item);
  MqarSegment seg;
  size_t i = 0;
  if (!f.empty() && !f[0].empty() && std::isalpha(static_cast<unsigned char>(f[0][0]))) {
    if (f[0] == "mqar") seg.task = Task::mqar;
    else if (f[0] == "forgetting") seg.task = Task::forgetting;
    else if (f[0] == "compositional") seg.task = Task::compositional;
    else
      throw ConfigError(context + ": unknown task '" + f[0] + "' (use mqar, forgetting or "
                        "compositional, e.g. forgetting:64:4:20000:updates=2)");
    i = 1;
  }
  if (f.size() < i + 3 || f[i].find('=') != std::string::npos ||
      f[i + 1].find('=') != std::string::npos || f[i + 2].find('=') != std::string::npos)
    throw ConfigError(context + " must have three fields T:K:count after the optional task "
                      "name, e.g. 64:4:20000 or forgetting:64:4:20000:updates=2");
  constexpr long int_max = std::numeric_limits<int>::max();
  seg.seq_len = static_cast<int>(parse_count(f[i], int_max, context, "T"));
  seg.num_kv = static_cast<int>(parse_count(f[i + 1], int_max, context, "K"));
  seg.count = parse_count(f[i + 2], std::numeric_limits<long>::max(), context, "count");
  std::vector<std::string> seen;
  for (size_t j = i + 3; j < f.size(); ++j) parse_segment_option(f[j], seg, context, seen);
  if (seg.task == Task::forgetting &&
      std::find(seen.begin(), seen.end(), "updates") == seen.end())
    throw ConfigError(context + ": a forgetting segment needs updates=U (how many of the K keys "
                      "are reassigned), e.g. forgetting:64:4:20000:updates=2");
  return seg;
}

}  // namespace

std::vector<MqarSegment> parse_segments(const std::string& text, const std::string& option) {
  const std::string all = trim(text);
  if (all.empty())
    throw ConfigError(option + " is empty; give segments as [task:]T:K:count[,...], e.g. "
                      "64:4:20000,128:8:1000");
  std::vector<MqarSegment> segs;
  size_t start = 0;
  while (true) {
    const size_t comma = all.find(',', start);
    const std::string item = trim(all.substr(start, comma == std::string::npos ? std::string::npos
                                                                               : comma - start));
    const std::string context =
        option + " segment " + std::to_string(segs.size() + 1) + " '" + item + "'";
    if (item.empty())
      throw ConfigError(option + ": segment " + std::to_string(segs.size() + 1) +
                        " is empty (stray comma?) in '" + text + "'; expected T:K:count[,...]");
    segs.push_back(parse_one_segment(item, context));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return segs;
}

std::string format_segments(const std::vector<MqarSegment>& segs) {
  std::string out;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i) out += ',';
    out += format_segment(segs[i]);
  }
  return out;
}

void validate(const MqarConfig& d) {
  if (!(d.power_a > 0.0f) || !std::isfinite(d.power_a))
    throw ConfigError("mqar.power_a=" + std::to_string(d.power_a) +
                      " must be a finite number > 0 (0.01 = Zoology's default, 1 = uniform gaps)");
  if (d.train.empty())
    throw ConfigError("mqar.train is empty; give at least one T:K:count segment, e.g. 64:4:100000");
  if (d.test.empty())
    throw ConfigError("mqar.test is empty; give at least one T:K:count segment, e.g. 64:4:1000");
  // A token file replaces the generated set; its own checks run when it is read.
  if (d.train_file.empty())
    for (size_t i = 0; i < d.train.size(); ++i)
      validate_segment(d.train[i], d.vocab_size, "mqar.train", static_cast<int>(i) + 1);
  if (d.test_file.empty())
    for (size_t i = 0; i < d.test.size(); ++i)
      validate_segment(d.test[i], d.vocab_size, "mqar.test", static_cast<int>(i) + 1);
  if (d.valid_file.empty())
    for (size_t i = 0; i < d.valid.size(); ++i)
      validate_segment(d.valid[i], d.vocab_size, "mqar.valid", static_cast<int>(i) + 1);
}

}  // namespace statex
