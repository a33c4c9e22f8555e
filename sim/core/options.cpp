#include "sim/core/options.h"

#include "sim/core/backend.h"

#include <cerrno>
#include <cmath>
#include <type_traits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace po = boost::program_options;

namespace statex {

std::string format_float(double v) {
  char buf[64];
  for (int prec = 6; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (static_cast<float>(std::strtod(buf, nullptr)) == static_cast<float>(v)) break;
  }
  return buf;
}

namespace {
std::string to_text(const std::string& v) { return v; }
std::string to_text(bool v) { return v ? "true" : "false"; }
std::string to_text(float v) { return format_float(v); }
template <class T>
std::string to_text(T v) { return std::to_string(v); }
}  // namespace

template <class T>
void OptionRegistry::add(const std::string& name, T* field, const std::string& help) {
  auto* value = po::value<T>(field)->default_value(*field, to_text(*field));
  // No option means inf or nan: every float option is refused non-finite, by name, whichever
  // model or command reads it (model.rope_theta = inf used to pass).
  if constexpr (std::is_floating_point_v<T>)
    value->notifier([name](T v) {
      if (!std::isfinite(v))
        throw ConfigError(name + " must be a finite number (got " + to_text(v) + ")");
    });
  desc_.add_options()(name.c_str(), value, help.c_str());
  getters_.emplace_back(name, [field] { return to_text(*field); });
}

// Seeds are unsigned: Boost would wrap "-1" to 2^64-1, so they are parsed here, strictly.
void OptionRegistry::add_seed(const std::string& name, unsigned long long* field,
                              const std::string& help) {
  auto parse = [name, field](const std::string& v) {
    bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
    errno = 0;
    unsigned long long x = digits ? std::strtoull(v.c_str(), nullptr, 10) : 0;
    if (!digits || errno == ERANGE)
      throw ConfigError(name + " must be an integer in [0, 2^64) (got '" + v + "')");
    *field = x;
  };
  desc_.add_options()(name.c_str(),
                      po::value<std::string>()->default_value(std::to_string(*field))->notifier(parse),
                      help.c_str());
  getters_.emplace_back(name, [field] { return std::to_string(*field); });
}

OptionRegistry::OptionRegistry(ExperimentConfig& c) {
  auto& m = c.model;
  add("model.model", &m.model, "token mixer: gla | mamba2 | attention | gated_deltanet");
  add("model.vocab_size", &m.vocab_size, "vocabulary size V (tokens)");
  add("model.d_model", &m.d_model, "model width D (scalars)");
  add("model.n_layers", &m.n_layers, "number of blocks L");
  add("model.mlp", &m.mlp, "SwiGLU MLP after each mixer (Zoology MQAR default: false)");
  add("model.mlp_hidden", &m.mlp_hidden, "MLP hidden width (0 = 8D/3 rounded up to 8)");
  add("model.tie_embeddings", &m.tie_embeddings, "LM head tied to the embedding");
  add("model.norm_eps", &m.norm_eps, "RMSNorm epsilon of the block norms and the final norm (Mamba2's gated norm keeps mamba_ssm's fixed 1e-5)");
  add("model.heads", &m.heads, "GLA, Gated DeltaNet and attention: heads H");
  add("model.expand_k", &m.expand_k, "GLA, Gated DeltaNet: key dim Dk = expand_k * D");
  add("model.expand_v", &m.expand_v, "GLA, Gated DeltaNet: value dim Dv = expand_v * D");
  add("model.use_short_conv", &m.use_short_conv,
      "GLA and attention: causal conv (width conv_width) + SiLU on q/k/v (off in the StateX "
      "paper; on by "
      "default here because it learns MQAR ~5x faster, docs/design.md §2)");
  add("model.conv_width", &m.conv_width, "conv width (GLA short conv, Mamba2 conv1d)");
  add("model.gate_low_rank", &m.gate_low_rank, "GLA: forget-gate low rank r");
  add("model.gate_logit_normalizer", &m.gate_logit_normalizer, "GLA: gk = logsigmoid(.)/this");
  add("model.rope", &m.rope, "attention: rotary embeddings on q and k");
  add("model.rope_theta", &m.rope_theta, "attention: RoPE base theta");
  add("model.expand", &m.expand, "Mamba2: d_inner = expand * D");
  add("model.head_dim", &m.head_dim, "Mamba2: head dim P (d_inner must be divisible by it)");
  add("model.ngroups", &m.ngroups, "Mamba2: B/C groups G (must divide the heads)");
  add("model.d_state", &m.d_state, "Mamba2: state dim N (scalars per head channel)");

  add("mqar.train", &c.mqar_train,
      "train segments [task:]T:K:count[:updates=U][:passes=p][:grid=g][,...] (tokens:pairs:"
      "examples; task mqar | forgetting | compositional, docs/tasks.md)");
  add("mqar.test", &c.mqar_test, "test segments, same syntax as mqar.train");
  add("mqar.valid", &c.mqar_valid,
      "validation segments, same syntax (empty = no validation split, the default): a seed "
      "space disjoint from train and test, evaluated beside the test set at every eval; with "
      "one, train.target_accuracy stops on validation accuracy and the analysis selects the lr "
      "on it (docs/tasks.md, docs/analysis.md)");
  add("mqar.power_a", &c.mqar.power_a, "query gap power law p(g) ~ a (g+1)^(a-1)");
  add("mqar.random_non_queries", &c.mqar.random_non_queries,
      "fill the non-query slots of the query region with random tokens (default on, as in "
      "Zoology; false gives the 0-filled query region)");
  add_seed("mqar.seed", &c.mqar.train_seed,
           "data seed (train, test and validation use disjoint seed spaces)");
  add("data.train", &c.mqar.train_file,
      "train on this HDF5 token file (statex data writes one) instead of mqar.train");
  add("data.test", &c.mqar.test_file,
      "evaluate on this HDF5 token file instead of mqar.test");
  add("data.valid", &c.mqar.valid_file,
      "validate on this HDF5 token file instead of mqar.valid (turns the validation split on)");

  auto& t = c.train;
  add("train.steps", &t.steps, "optimizer steps");
  add("train.batch_size", &t.batch_size, "examples per step");
  add("train.lr", &t.lr, "peak learning rate");
  add("train.min_lr_ratio", &t.min_lr_ratio, "cosine floor as a fraction of lr");
  add("train.warmup_steps", &t.warmup_steps, "linear warm-up (steps)");
  add("train.beta1", &t.beta1, "AdamW beta1");
  add("train.beta2", &t.beta2, "AdamW beta2");
  add("train.adam_eps", &t.adam_eps, "AdamW epsilon");
  add("train.weight_decay", &t.weight_decay, "AdamW decoupled weight decay");
  add("train.decay_all", &t.decay_all, "decay every tensor (default: 2-D weights only)");
  add("train.grad_clip", &t.grad_clip, "clip global grad norm to this (0 = off)");
  add("train.eval_every", &t.eval_every, "evaluate on the test set every N steps");
  add("train.target_accuracy", &t.target_accuracy,
      "stop early at this accuracy (0 = off): validation accuracy when a validation split is "
      "configured (mqar.valid / data.valid), else test accuracy");
  add_seed("train.seed", &t.seed, "parameter init seed");
  add("train.threads", &t.threads, "OpenMP threads (0 = OpenMP default)");
  add("train.gla_chunk", &t.gla_chunk, "chunk length of the chunked GLA (tokens)");
  add("train.ssd_chunk", &t.ssd_chunk, "chunk length of the chunked SSD (tokens)");
  add("train.checkpoint_every", &t.checkpoint_every, "write the checkpoint every N steps (0 = end only)");
  add("device", &t.device, "cpu | cuda");

  auto& s = c.statex;
  add("statex.step", &s.step, "expand after this many steps (-1 = off)");
  add("statex.fraction", &s.fraction, "or at this fraction of train.steps (-1 = off)");
  add("statex.count", &s.count, "number of layers to expand (1..L)");
  add("statex.select", &s.select, "layer choice: evenly | first | last | list");
  add("statex.layers", &s.layers, "explicit layer list \"0,2\" for select = list");
  add("statex.mode", &s.mode, "reinit (paper) | inherit");
  add("statex.gla_heads", &s.gla_heads, "GLA, Gated DeltaNet: heads after merging");
  add("statex.state_mult", &s.state_mult, "Mamba2: d_state multiplier m");
  add("statex.reset_optimizer", &s.reset_optimizer,
      "zero all AdamW moments at expansion (new/reshaped tensors always start at zero)");
  add("statex.warmup_steps", &s.warmup_steps, "warm-up of the schedule restarted at expansion");
  add("statex.arm", &s.arm, "arm label recorded in results: statex | control | scratch");
}

std::vector<std::string> OptionRegistry::names() const {
  std::vector<std::string> n;
  for (auto& g : getters_) n.push_back(g.first);
  return n;
}

bool OptionRegistry::has(const std::string& name) const {
  for (auto& g : getters_)
    if (g.first == name) return true;
  return false;
}

std::map<std::string, std::string> OptionRegistry::values() const {
  std::map<std::string, std::string> v;
  for (auto& g : getters_) v[g.first] = g.second();
  return v;
}

std::string OptionRegistry::to_ini() const {
  // Group by the prefix before the first dot; "device" has none and goes first.
  std::ostringstream top, body;
  std::string section;
  for (auto& [name, get] : getters_) {
    auto dot = name.find('.');
    if (dot == std::string::npos) {
      top << name << " = " << get() << "\n";
      continue;
    }
    std::string sec = name.substr(0, dot);
    if (sec != section) {
      body << "\n[" << sec << "]\n";
      section = sec;
    }
    body << name.substr(dot + 1) << " = " << get() << "\n";
  }
  return top.str() + body.str();
}

std::vector<std::string> experiment_option_names() {
  ExperimentConfig c;
  return OptionRegistry(c).names();
}

namespace {
std::set<std::string>& command_line_names() {
  static std::set<std::string> names;
  return names;
}
}  // namespace

bool given_on_command_line(const std::string& name) { return command_line_names().count(name) > 0; }

int command_line_style() {
  return po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
}

namespace {

bool used_by(const std::string& name, const std::vector<std::string>& uses) {
  if (uses.empty()) return true;
  for (const std::string& u : uses)
    if (name == u || (!u.empty() && u.back() == '.' && name.rfind(u, 0) == 0)) return true;
  return false;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// Line number (1-based) of option `name` ("section.key") in INI text, 0 if not found.
int ini_line_of(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line, section;
  for (int n = 1; std::getline(in, line); ++n) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      section = trim(t.substr(1, t.find(']') - 1));
      continue;
    }
    std::string key = trim(t.substr(0, t.find('=')));
    if ((section.empty() ? key : section + "." + key) == name) return n;
  }
  return 0;
}

// Syntax check of INI text before Boost sees it: "FILE:LINE: ..." for the first bad line.
void check_ini_syntax(const std::string& text, const std::string& file) {
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    bool ok = t[0] == '[' ? (t.back() == ']' && t.size() > 2)
                          : (t.find('=') != std::string::npos && !trim(t.substr(0, t.find('='))).empty());
    if (!ok)
      throw ConfigError("--config " + file + ":" + std::to_string(n) + ": cannot parse '" + t +
                        "' (expected 'key = value' or '[section]')");
  }
}

std::string at_line(const std::string& file, const std::string& text, const std::string& name) {
  int n = ini_line_of(text, name);
  return "--config " + file + (n > 0 ? ":" + std::to_string(n) : "") + ": ";
}

}  // namespace

po::variables_map parse_experiment(int argc, char** argv, ExperimentConfig& cfg,
                                   const po::options_description& extra, const std::string& usage,
                                   const std::vector<std::string>& uses) {
  OptionRegistry reg(cfg);
  po::options_description cli, shown("Experiment options (CLI or INI file)");
  cli.add_options()("help,h", "show this help")(
      "config", po::value<std::string>(), "INI experiment file (command-line options override it)");
  cli.add(extra).add(reg.description());
  for (const auto& opt : reg.description().options())
    if (used_by(opt->long_name(), uses)) shown.add(opt);
  po::variables_map vm;
  std::string command = argc > 0 ? argv[0] : "statex";
  try {
    po::store(po::command_line_parser(argc, argv).options(cli).style(command_line_style()).run(), vm);
  } catch (const po::unknown_option& e) {
    throw ConfigError("unknown option '" + e.get_option_name() + "' (statex " + command +
                      " --help lists its options; abbreviations are not accepted)");
  } catch (const po::error& e) {
    throw ConfigError(e.what());
  }
  if (vm.count("help")) {
    po::options_description help;
    help.add_options()("help,h", "show this help")(
        "config", po::value<std::string>(), "INI experiment file (command-line options override it)");
    help.add(extra);
    if (!shown.options().empty()) help.add(shown);
    std::cout << usage << "\n" << help << "\n";
    return vm;
  }
  command_line_names().clear();
  for (const auto& [name, value] : vm)
    if (!value.defaulted() && reg.has(name)) command_line_names().insert(name);
  for (const auto& [name, value] : vm)
    if (!value.defaulted() && reg.has(name) && !used_by(name, uses))
      throw ConfigError("--" + name + " is not used by statex " + command +
                        " (statex " + command + " --help lists the options it reads)");
  std::string path, text;
  try {
    if (vm.count("config")) {
      path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw ConfigError("--config: cannot open '" + path + "'");
      std::stringstream buf;
      buf << in.rdbuf();
      text = buf.str();
      check_ini_syntax(text, path);
      std::istringstream ini(text);
      po::store(po::parse_config_file(ini, reg.description(), /*allow_unregistered=*/false), vm);
    }
    po::notify(vm);
    if (used_by("device", uses) && cfg.train.device == "cuda") {
      std::string why;
      if (!cuda_available(&why))
        throw ConfigError("device = cuda, but no usable GPU: " + why + " (use --device cpu)");
    }
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    throw ConfigError(at_line(path, text, name) + "unknown option '" + name +
                      "' (statex " + command + " --help lists every option)");
  } catch (const po::error_with_option_name& e) {
    std::string name = e.get_option_name();
    while (!name.empty() && name[0] == '-') name.erase(0, 1);
    bool from_file = !path.empty() && ini_line_of(text, name) > 0;
    throw ConfigError((from_file ? at_line(path, text, name) : std::string()) + e.what());
  } catch (const po::error& e) {
    throw ConfigError((path.empty() ? "" : "--config " + path + ": ") + std::string(e.what()));
  }
  return vm;
}

std::map<std::string, std::string> config_values_from_ini(const std::string& ini_text) {
  ExperimentConfig c;
  OptionRegistry reg(c);
  po::variables_map vm;
  try {
    std::istringstream in(ini_text);
    po::store(po::parse_config_file(in, reg.description(), /*allow_unregistered=*/false), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(e.what());
  }
  return reg.values();
}

void finalize(ExperimentConfig& cfg) {
  cfg.mqar.vocab_size = cfg.model.vocab_size;
  cfg.mqar.train = parse_segments(cfg.mqar_train, "mqar.train");
  cfg.mqar.test = parse_segments(cfg.mqar_test, "mqar.test");
  // Empty (or blank) = no validation split; anything else must parse.
  cfg.mqar.valid.clear();
  if (cfg.mqar_valid.find_first_not_of(" \t\r") != std::string::npos)
    cfg.mqar.valid = parse_segments(cfg.mqar_valid, "mqar.valid");
  validate(cfg.model);
  validate(cfg.mqar);
  validate(cfg.train);
  validate(cfg.statex);
}

}  // namespace statex
