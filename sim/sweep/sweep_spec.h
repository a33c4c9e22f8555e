#pragma once
// A sweep file: a base experiment config (normal INI sections, Boost.Program_options config-file
// syntax) plus a [sweep] section declaring axes. Syntax and semantics: docs/sweeps.md.
//
//   [train]
//   steps = 200
//   [sweep]
//   name = lr_vs_width
//   grid.train.lr = 1e-3, 3e-3          # independent axis: every value with every other axis
//   zip.size.model.d_model = 32, 64     # tied axes: group "size" advances all its options together
//   zip.size.model.heads   = 1, 2
//
// Trials = cartesian product of grid axes and zip groups. Each trial's resolved config (base +
// overrides, option values as written) gets a deterministic id from its canonical text.
#include <map>
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace statex::sweep {

// One `option = value` of the base config, with the line it came from.
struct Setting {
  std::string option;  // full name: "model.d_model", "device"
  std::string value;
  int line = 0;
};

// One swept option: a grid axis (zip_group empty) or one member of a zip group.
struct Axis {
  std::string option;
  std::vector<std::string> values;
  std::string zip_group;  // "" = independent grid axis
  int line = 0;
};

struct SweepSpec {
  std::string source;  // file path (for messages)
  std::string name;    // [sweep] name; defaults to the file's stem
  std::vector<Setting> base;  // file order
  std::vector<Axis> axes;     // file order
};

// Option name -> value, sorted by name. The canonical form of a trial's config.
using ConfigMap = std::map<std::string, std::string>;

struct Trial {
  std::string id;  // trial_id(config)
  ConfigMap config;  // base + this trial's overrides
  std::vector<std::pair<std::string, std::string>> swept;  // (option, value) in axis order
};

// Parses sweep text. `known_options` lists the valid option names (empty = accept any). Throws
// ConfigError "<source>:<line>: <what>" naming the line: unknown option, empty axis or empty
// value, zip axes of unequal length, duplicates, malformed lines, bad [sweep] keys.
SweepSpec parse_sweep_text(const std::string& text, const std::string& source,
                           const std::vector<std::string>& known_options);
SweepSpec parse_sweep_file(const std::string& path, const std::vector<std::string>& known_options);

// All trials, first axis (or zip group) outermost. Throws ConfigError if two trials coincide.
std::vector<Trial> expand(const SweepSpec& spec);

// Swept option names in axis order (the extra columns of index.csv).
std::vector<std::string> swept_options(const SweepSpec& spec);

// "name=value\n" per option, sorted by name: what the id hashes.
std::string canonical_text(const ConfigMap& config);
// First 12 hex digits of the 64-bit FNV-1a hash of canonical_text(config).
std::string trial_id(const ConfigMap& config);
// The config as an INI file `statex train --config` reads (top-level options first, then
// one [section] per prefix before the first dot).
std::string to_ini(const ConfigMap& config);

}  // namespace statex::sweep
