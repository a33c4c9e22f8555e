#pragma once
// The option registry: every experiment option (model.*, mqar.*, train.*, statex.*, device) is
// declared once here with its default, unit and help text. It feeds Boost.Program_options for
// the command line and INI files, and turns a config back into name -> value strings for
// results files, checkpoints and sweep trial files.
#include <boost/program_options.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace statex {

class OptionRegistry {
 public:
  // Binds every option to a field of `cfg` (which must outlive the registry).
  explicit OptionRegistry(ExperimentConfig& cfg);

  // Boost description of all options ("--model.d_model" etc.), for the CLI and INI parsing.
  const boost::program_options::options_description& description() const { return desc_; }
  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  // Current values of every option as strings (the fully resolved config).
  std::map<std::string, std::string> values() const;
  // The same as INI text with [section] headers; parses back to the same config.
  std::string to_ini() const;

 private:
  void add_seed(const std::string& name, unsigned long long* field, const std::string& help);
  template <class T>
  void add(const std::string& name, T* field, const std::string& help);
  boost::program_options::options_description desc_{"Experiment options (CLI or INI file)"};
  std::vector<std::pair<std::string, std::function<std::string()>>> getters_;
};

// Option name -> value of an INI experiment text (e.g. a checkpoint's config_ini), defaults
// filled in for options it does not set. Throws ConfigError on unknown options or bad values.
std::map<std::string, std::string> config_values_from_ini(const std::string& ini_text);

// Names of all experiment options (used by the sweep file checker).
std::vector<std::string> experiment_option_names();

// Parses argv (after the subcommand) plus an optional INI file named by --config into cfg.
// Extra (command-specific) options go in `extra`. `uses` lists the experiment options the
// command reads, as names or prefixes ("model.", "mqar.test", "device"; empty = all): --help
// shows only those, and giving another one on the command line is an error naming it (an INI
// file may hold the others: one experiment file serves every command). Unknown options and
// abbreviations raise ConfigError naming the option; INI errors name the file and the line.
// Returns the variables map. Command-line values override the INI file.
boost::program_options::variables_map parse_experiment(
    int argc, char** argv, ExperimentConfig& cfg,
    const boost::program_options::options_description& extra, const std::string& usage,
    const std::vector<std::string>& uses = {});

// The experiment options the last parse_experiment call found on the command line (not in the
// INI file): a check may treat an explicit request differently from a resolved config file,
// which lists every option (a results file's /config/ini, a token file's config_ini).
bool given_on_command_line(const std::string& name);

// Boost's parsing style for every statex command: the defaults without abbreviations
// (`--train.step` must not silently mean `--train.steps`).
int command_line_style();

// Validates everything and fills derived fields (mqar segments, mqar vocab = model vocab).
void finalize(ExperimentConfig& cfg);

std::string format_float(double v);  // shortest round-trip text for a float option

}  // namespace statex
