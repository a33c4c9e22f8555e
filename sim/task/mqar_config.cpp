// MqarConfig validation and the "T:K:count[,T:K:count...]" segment syntax (sim/core/config.h).
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

}  // namespace

std::vector<MqarSegment> parse_segments(const std::string& text, const std::string& option) {
  const std::string all = trim(text);
  if (all.empty())
    throw ConfigError(option + " is empty; give segments as T:K:count[,T:K:count...], e.g. "
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
    const size_t c1 = item.find(':');
    const size_t c2 = c1 == std::string::npos ? c1 : item.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos ||
        item.find(':', c2 + 1) != std::string::npos)
      throw ConfigError(context + " must have exactly three fields T:K:count, e.g. 64:4:20000");
    constexpr long int_max = std::numeric_limits<int>::max();
    MqarSegment seg;
    seg.seq_len = static_cast<int>(parse_count(item.substr(0, c1), int_max, context, "T"));
    seg.num_kv = static_cast<int>(parse_count(item.substr(c1 + 1, c2 - c1 - 1), int_max, context, "K"));
    seg.count = parse_count(item.substr(c2 + 1), std::numeric_limits<long>::max(), context, "count");
    segs.push_back(seg);
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
  for (size_t i = 0; i < d.train.size(); ++i)
    validate_segment(d.train[i], d.vocab_size, "mqar.train", static_cast<int>(i) + 1);
  for (size_t i = 0; i < d.test.size(); ++i)
    validate_segment(d.test[i], d.vocab_size, "mqar.test", static_cast<int>(i) + 1);
}

}  // namespace statex
