#include "sim/sweep/sweep_spec.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

namespace statex::sweep {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

[[noreturn]] void fail(const std::string& source, int line, const std::string& what) {
  throw ConfigError(source + ":" + std::to_string(line) + ": " + what);
}

// Axis values: comma-separated, or '|'-separated when the text contains a '|' (for options
// whose own values contain commas, like mqar.test = 64:4:100,128:8:100).
std::vector<std::string> split_values(const std::string& text, const std::string& source,
                                      int line, const std::string& key) {
  char sep = text.find('|') != std::string::npos ? '|' : ',';
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) out.push_back(trim(item));
  if (!text.empty() && text.back() == sep) out.push_back("");
  if (out.empty()) fail(source, line, "axis '" + key + "' has no values");
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].empty())
      fail(source, line, "axis '" + key + "' has an empty value (item " + std::to_string(i + 1) +
                             "); separate values with '" + std::string(1, sep) + "'");
  return out;
}

std::string suggest(const std::string& name, const std::vector<std::string>& known) {
  // Same suffix after the section is the most common slip ("train.d_model").
  auto dot = name.rfind('.');
  std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
  for (auto& k : known) {
    auto kd = k.rfind('.');
    if ((kd == std::string::npos ? k : k.substr(kd + 1)) == leaf) return " (did you mean '" + k + "'?)";
  }
  return " (statex train --help lists every option)";
}

}  // namespace

SweepSpec parse_sweep_text(const std::string& text, const std::string& source,
                           const std::vector<std::string>& known_options) {
  SweepSpec spec;
  spec.source = source;
  std::set<std::string> known(known_options.begin(), known_options.end());
  auto check_option = [&](const std::string& opt, int line) {
    if (!known.empty() && !known.count(opt)) fail(source, line, "unknown option '" + opt + "'" + suggest(opt, known_options));
  };
  std::map<std::string, int> base_line, axis_line;  // option -> line, for duplicate messages
  std::string section;
  std::istringstream in(text);
  std::string raw;
  int line = 0;
  bool name_set = false;
  while (std::getline(in, raw)) {
    ++line;
    std::string s = raw;
    auto hash = s.find('#');  // Boost config files: '#' starts a comment anywhere on the line
    if (hash != std::string::npos) s = s.substr(0, hash);
    s = trim(s);
    if (s.empty()) continue;
    if (s.front() == '[') {
      if (s.back() != ']') fail(source, line, "malformed section header '" + s + "'");
      section = trim(s.substr(1, s.size() - 2));
      if (section.empty()) fail(source, line, "empty section name");
      continue;
    }
    auto eq = s.find('=');
    if (eq == std::string::npos) fail(source, line, "expected 'name = value', got '" + s + "'");
    std::string key = trim(s.substr(0, eq)), value = trim(s.substr(eq + 1));
    if (key.empty()) fail(source, line, "missing option name before '='");

    if (section != "sweep") {
      std::string opt = section.empty() ? key : section + "." + key;
      check_option(opt, line);
      if (base_line.count(opt))
        fail(source, line, "option '" + opt + "' already set on line " + std::to_string(base_line[opt]));
      base_line[opt] = line;
      spec.base.push_back({opt, value, line});
      continue;
    }
    // [sweep] section: name, grid.<option>, zip.<group>.<option>
    if (key == "name") {
      if (name_set) fail(source, line, "sweep name set twice");
      if (value.empty()) fail(source, line, "empty sweep name");
      spec.name = value;
      name_set = true;
      continue;
    }
    Axis axis;
    axis.line = line;
    if (key.rfind("grid.", 0) == 0) {
      axis.option = key.substr(5);
    } else if (key.rfind("zip.", 0) == 0) {
      std::string rest = key.substr(4);
      auto dot = rest.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size())
        fail(source, line, "zip axis must be 'zip.<group>.<option>', got '" + key + "'");
      axis.zip_group = rest.substr(0, dot);
      axis.option = rest.substr(dot + 1);
    } else {
      fail(source, line, "unknown [sweep] key '" + key + "' (expected name, grid.<option> or zip.<group>.<option>)");
    }
    if (axis.option.empty()) fail(source, line, "axis '" + key + "' names no option");
    check_option(axis.option, line);
    if (axis_line.count(axis.option))
      fail(source, line, "option '" + axis.option + "' already swept on line " + std::to_string(axis_line[axis.option]));
    axis_line[axis.option] = line;
    axis.values = split_values(value, source, line, key);
    // A grid axis with a repeated value would give identical trials; in a zip group a repeat
    // is fine (e.g. heads = 1,1,1 beside d_model = 16,32,64).
    std::set<std::string> seen;
    for (auto& v : axis.values)
      if (axis.zip_group.empty() && !seen.insert(v).second)
        fail(source, line, "axis '" + key + "' lists '" + v + "' twice");
    spec.axes.push_back(axis);
  }
  // Zip groups: every member must have the same number of values as the group's first member.
  std::map<std::string, const Axis*> first;
  for (auto& a : spec.axes) {
    if (a.zip_group.empty()) continue;
    auto it = first.find(a.zip_group);
    if (it == first.end()) {
      first[a.zip_group] = &a;
    } else if (it->second->values.size() != a.values.size()) {
      fail(source, a.line, "zip group '" + a.zip_group + "': '" + a.option + "' has " +
                               std::to_string(a.values.size()) + " values but '" + it->second->option +
                               "' (line " + std::to_string(it->second->line) + ") has " +
                               std::to_string(it->second->values.size()));
    }
  }
  if (spec.name.empty()) {
    auto slash = source.find_last_of('/');
    std::string stem = slash == std::string::npos ? source : source.substr(slash + 1);
    auto dot = stem.rfind('.');
    spec.name = dot == std::string::npos || dot == 0 ? stem : stem.substr(0, dot);
  }
  return spec;
}

SweepSpec parse_sweep_file(const std::string& path, const std::vector<std::string>& known_options) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open sweep file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_sweep_text(ss.str(), path, known_options);
}

std::vector<std::string> swept_options(const SweepSpec& spec) {
  std::vector<std::string> out;
  for (auto& a : spec.axes) out.push_back(a.option);
  return out;
}

std::vector<Trial> expand(const SweepSpec& spec) {
  // Dimensions: each grid axis alone, each zip group as one (at its first member's position).
  std::vector<std::vector<const Axis*>> dims;
  std::map<std::string, size_t> group_dim;
  for (auto& a : spec.axes) {
    if (a.zip_group.empty()) {
      dims.push_back({&a});
    } else if (group_dim.count(a.zip_group)) {
      dims[group_dim[a.zip_group]].push_back(&a);
    } else {
      group_dim[a.zip_group] = dims.size();
      dims.push_back({&a});
    }
  }
  ConfigMap base;
  for (auto& s : spec.base) base[s.option] = s.value;

  std::vector<Trial> trials;
  std::vector<size_t> idx(dims.size(), 0);
  while (true) {
    Trial t;
    t.config = base;
    for (auto& a : spec.axes) t.swept.emplace_back(a.option, "");
    for (size_t d = 0; d < dims.size(); ++d)
      for (const Axis* a : dims[d]) {
        t.config[a->option] = a->values[idx[d]];
        for (auto& sw : t.swept)
          if (sw.first == a->option) sw.second = a->values[idx[d]];
      }
    t.id = trial_id(t.config);
    trials.push_back(std::move(t));
    // Odometer: last dimension fastest.
    int d = static_cast<int>(dims.size()) - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < dims[d].front()->values.size()) break;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < trials.size(); ++i) {
    auto [it, fresh] = seen.emplace(trials[i].id, i);
    if (!fresh) throw ConfigError(spec.source + ": trials " + std::to_string(it->second + 1) + " and " +
                                  std::to_string(i + 1) + " have the same config (id " + trials[i].id + ")");
  }
  return trials;
}

std::string canonical_text(const ConfigMap& config) {
  std::string out;
  for (auto& [k, v] : config) out += k + "=" + v + "\n";
  return out;
}

std::string trial_id(const ConfigMap& config) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64: tiny, portable, stable across machines
  for (unsigned char c : canonical_text(config)) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

std::string to_ini(const ConfigMap& config) {
  std::string top, body, section;
  for (auto& [k, v] : config) {
    auto dot = k.find('.');
    if (dot == std::string::npos) {
      top += k + " = " + v + "\n";
      continue;
    }
    std::string sec = k.substr(0, dot);
    if (sec != section) {
      body += "\n[" + sec + "]\n";
      section = sec;
    }
    body += k.substr(dot + 1) + " = " + v + "\n";
  }
  return top + body;
}

}  // namespace statex::sweep
