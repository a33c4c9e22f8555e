// Checkpoint writer/reader: layout in docs/results_format.md.
#include "sim/io/checkpoint.h"

#include <set>
#include <stdexcept>

#include "build_info.h"
#include "sim/core/provenance.h"
#include "sim/io/h5.h"
#include "sim/model/param_layout.h"
#include "sim/io/run_record.h"

namespace statex {
namespace {

constexpr const char* kFormat = "statex-sim checkpoint";

// Failure inside the reader; load_checkpoint adds the file name once.
struct Bad : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void write_flat(hid_t group, const ParamTable& table, const std::vector<float>& buf) {
  for (const ParamEntry& e : table.entries())
    h5::write_dataset<float>(group, e.name, buf.data() + e.offset, e.shape);
}

void check_sizes(const Checkpoint& ck) {
  auto need = [&](const std::vector<float>& v, const char* what) {
    if (static_cast<int64_t>(v.size()) != ck.table.total())
      throw std::runtime_error(std::string(what) + " has " + std::to_string(v.size()) +
                               " values but the parameter table needs " +
                               std::to_string(ck.table.total()));
  };
  need(ck.params, "params");
  if (ck.has_optimizer) {
    need(ck.exp_avg, "exp_avg");
    need(ck.exp_avg_sq, "exp_avg_sq");
  }
  for (const ParamEntry& e : ck.table.entries())
    if (e.name.empty() || e.name.find('/') != std::string::npos || e.name == ".")
      throw std::runtime_error("parameter name '" + e.name + "' cannot be an HDF5 dataset name");
}

// Reads one flat buffer (params or a moment) laid out by `table` from `group`.
void read_flat(hid_t group, const std::string& group_path, const ParamTable& table,
               std::vector<float>& buf) {
  buf.assign(table.total(), 0.0f);
  for (const ParamEntry& e : table.entries()) {
    if (!h5::exists(group, e.name))
      throw Bad("missing parameter dataset '" + group_path + "/" + e.name + "'");
    std::vector<int64_t> shape = h5::dataset_shape(group, e.name);
    if (shape != e.shape)
      throw Bad("'" + group_path + "/" + e.name + "' has shape " + h5::shape_str(shape) +
                ", expected " + h5::shape_str(e.shape));
    // Integrity rule (docs/results_format.md): every non-scalar tensor carries Fletcher32.
    if (!e.shape.empty() && e.numel() > 0 && !h5::has_checksum(group, e.name))
      throw Bad("'" + group_path + "/" + e.name + "' has no Fletcher32 checksum (write every " +
                "checkpoint dataset chunked with fletcher32=True)");
    h5::read_dataset_into<float>(group, e.name, buf.data() + e.offset, e.numel());
  }
}

// The parameter table: *expected (checked against the file), or the file's own listing.
ParamTable read_table(hid_t params, const ParamTable* expected) {
  std::vector<std::string> names = h5::child_names(params);
  if (names.empty()) throw Bad("'/params' holds no parameters");
  if (expected) {
    std::vector<std::string> extra;
    for (const std::string& n : names)
      if (!expected->contains(n)) extra.push_back(n);
    if (!extra.empty())
      throw Bad("'/params/" + extra[0] + "' is not a parameter of this model (" +
                std::to_string(extra.size()) +
                " unexpected; was the checkpoint written for another model?)");
    return *expected;  // read_flat reports missing names and shape mismatches
  }
  ParamTable table;
  for (const std::string& n : names) table.add(n, h5::dataset_shape(params, n));
  return table;
}

ModelConfig read_model(hid_t f) {
  h5::Handle m = h5::open_group(f, "model");
  ModelConfig model;
  try {
    model = model_config_from_map(h5::read_str_attrs(m));
  } catch (const std::exception& e) {
    throw Bad(std::string("bad model options in '/model': ") + e.what());
  }
  std::vector<int64_t> shape;
  auto heads = h5::read_dataset<int32_t>(m, "layer_heads", &shape);
  auto d_state = h5::read_dataset<int32_t>(m, "layer_d_state");
  if (static_cast<int>(heads.size()) != model.n_layers ||
      static_cast<int>(d_state.size()) != model.n_layers)
    throw Bad("'/model/layer_heads' and '/model/layer_d_state' must have model.n_layers = " +
              std::to_string(model.n_layers) + " entries, got " + std::to_string(heads.size()) +
              " and " + std::to_string(d_state.size()));
  // Keep `layers` empty when every layer has the default shape (what the config would say).
  MixerShape def = model.default_shape();
  bool all_default = true;
  for (int l = 0; l < model.n_layers; ++l) {
    model.layers.push_back({heads[l], d_state[l]});
    all_default = all_default && heads[l] == def.heads && d_state[l] == def.d_state;
  }
  if (all_default) model.layers.clear();
  return model;
}

Checkpoint read_checkpoint(hid_t f, const ParamTable* expected) {
  if (!h5::has_attr(f, "format"))
    throw Bad("no 'format' attribute: not a statex-sim checkpoint");
  std::string format = h5::read_attr_str(f, "format");
  if (format != kFormat)
    throw Bad("field 'format' is '" + format + "', expected '" + kFormat + "'" +
              (format == "statex-sim results" ? " (this is a results file, not a checkpoint)"
                                              : ""));
  int64_t version = h5::read_attr_i64(f, "format_version");
  if (version != kCheckpointFormatVersion)
    throw Bad("field 'format_version' is " + std::to_string(version) +
              "; this build reads only version " + std::to_string(kCheckpointFormatVersion));

  Checkpoint ck;
  ck.step = h5::read_attr_i64(f, "step");
  ck.model = read_model(f);
  // Without an expected table, the model's own layout is expected: a missing, extra or
  // reshaped tensor is then a named error here, not a size mismatch later.
  ParamTable own;
  if (!expected) {
    try {
      validate(ck.model);
      own = build_param_table(ck.model);
    } catch (const std::exception& e) {
      throw Bad(std::string("bad model options in '/model': ") + e.what());
    }
    expected = &own;
  }
  {
    h5::Handle p = h5::open_group(f, "params");
    ck.table = read_table(p, expected);
    read_flat(p, "/params", ck.table, ck.params);
  }
  ck.has_optimizer = h5::exists(f, "optim");
  if (ck.has_optimizer) {
    h5::Handle m = h5::open_group(f, "optim/exp_avg");
    read_flat(m, "/optim/exp_avg", ck.table, ck.exp_avg);
    h5::Handle v = h5::open_group(f, "optim/exp_avg_sq");
    read_flat(v, "/optim/exp_avg_sq", ck.table, ck.exp_avg_sq);
  }
  if (h5::exists(f, "trainer")) {
    h5::Handle t = h5::open_group(f, "trainer");
    // A missing or mistyped attribute is named (e.g. a string where an int64 belongs).
    auto attr = [&](const char* name, auto read) {
      try {
        return read(t, name);
      } catch (const std::exception& e) {
        throw Bad(std::string("trainer attribute '") + name + "' is damaged or missing (" +
                  e.what() + ")");
      }
    };
    TrainerState s;
    s.config_ini = attr("config_ini", h5::read_attr_str);
    s.schedule_start = attr("schedule_start", h5::read_attr_i64);
    s.schedule_length = attr("schedule_length", h5::read_attr_i64);
    s.schedule_warmup = attr("schedule_warmup", h5::read_attr_i64);
    s.tensor_steps = attr("tensor_steps", h5::read_attr_i64_vec);
    s.statex_event_step = attr("statex_event_step", h5::read_attr_i64);
    s.wall_time_s = attr("wall_time_s", h5::read_attr_f64);
    s.tokens_seen = attr("tokens_seen", h5::read_attr_f64);
    // Identity attributes: absent in checkpoints written before they existed.
    auto optional = [&](const char* name) {
      return h5::has_attr(t, name) ? attr(name, h5::read_attr_str) : std::string();
    };
    s.run_uid = optional("run_uid");
    s.results_file = optional("results_file");
    s.data_digests = optional("data_digests");
    s.status = optional("status");
    ck.trainer = std::move(s);
  }
  if (h5::exists(f, "expansion")) {
    h5::Handle x = h5::open_group(f, "expansion");
    ExpansionOrigin o;
    o.layers = h5::read_attr_i64_vec(x, "layers");
    o.mode = h5::read_attr_str(x, "mode");
    o.source = h5::read_attr_str(x, "source");
    ck.expansion = std::move(o);
  }
  return ck;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  try {
    check_sizes(ck);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write checkpoint '" + path + "': " + e.what());
  }
  h5::write_atomically(path, [&](hid_t f) {
    h5::write_attr(f, "format", kFormat);
    h5::write_attr(f, "format_version", int32_t{kCheckpointFormatVersion});
    h5::write_attr(f, "step", ck.step);
    h5::write_attr(f, "step_unit", "steps");

    // Which build on which machine wrote it (read by people and `analysis`, not by the loader).
    h5::Handle b = h5::create_group(f, "build");
    h5::write_attr(b, "git_commit", STATEX_GIT_COMMIT);
    for (const auto& [name, value] : provenance().fields()) h5::write_attr(b, name, value);

    h5::Handle m = h5::create_group(f, "model");
    for (const auto& [name, value] : to_map(ck.model)) h5::write_attr(m, name, value);
    std::vector<int32_t> heads, d_state;
    for (int l = 0; l < ck.model.n_layers; ++l) {
      MixerShape s = ck.model.layer_shape(l);
      heads.push_back(s.heads);
      d_state.push_back(s.d_state);
    }
    h5::write_dataset(m, "layer_heads", heads);
    h5::write_dataset(m, "layer_d_state", d_state);

    // Creation order is tracked so a reader rebuilds the table with the same offsets.
    h5::Handle p = h5::create_group(f, "params", /*track_order=*/true);
    write_flat(p, ck.table, ck.params);
    if (ck.has_optimizer) {
      h5::Handle o = h5::create_group(f, "optim");
      h5::Handle m1 = h5::create_group(o, "exp_avg", true);
      write_flat(m1, ck.table, ck.exp_avg);
      h5::Handle m2 = h5::create_group(o, "exp_avg_sq", true);
      write_flat(m2, ck.table, ck.exp_avg_sq);
    }
    if (ck.trainer) {
      const TrainerState& s = *ck.trainer;
      h5::Handle t = h5::create_group(f, "trainer");
      h5::write_attr(t, "config_ini", s.config_ini);
      h5::write_attr(t, "schedule_start", s.schedule_start);
      h5::write_attr(t, "schedule_length", s.schedule_length);
      h5::write_attr(t, "schedule_warmup", s.schedule_warmup);
      h5::write_attr(t, "tensor_steps", s.tensor_steps);
      h5::write_attr(t, "statex_event_step", s.statex_event_step);
      h5::write_attr(t, "wall_time_s", s.wall_time_s);
      h5::write_attr(t, "tokens_seen", s.tokens_seen);
      h5::write_attr(t, "run_uid", s.run_uid);
      h5::write_attr(t, "results_file", s.results_file);
      h5::write_attr(t, "data_digests", s.data_digests);
      h5::write_attr(t, "status", s.status);
    }
    if (ck.expansion) {
      h5::Handle x = h5::create_group(f, "expansion");
      h5::write_attr(x, "layers", ck.expansion->layers);
      h5::write_attr(x, "mode", ck.expansion->mode);
      h5::write_attr(x, "source", ck.expansion->source);
    }
  });
}

Checkpoint load_checkpoint(const std::string& path, const ParamTable* expected) {
  try {
    h5::Handle f = h5::open_file(path);
    return read_checkpoint(f, expected);
  } catch (const std::exception& e) {
    throw ConfigError("cannot load checkpoint '" + path + "': " + e.what());
  }
}

std::vector<std::string> model_mismatches(const ModelConfig& a, const ModelConfig& b) {
  std::vector<std::string> out;
  auto differ = [&](const std::string& name, const std::string& x, const std::string& y) {
    out.push_back(name + ": " + x + " in the checkpoint, " + y + " expected");
  };
  std::map<std::string, std::string> ma = to_map(a), mb = to_map(b);
  if (a.model != b.model && !ma.count("model")) differ("model", a.model, b.model);
  std::set<std::string> keys;
  for (auto& kv : ma) keys.insert(kv.first);
  for (auto& kv : mb) keys.insert(kv.first);
  for (const std::string& k : keys) {
    auto ia = ma.find(k), ib = mb.find(k);
    std::string x = ia == ma.end() ? "(absent)" : ia->second;
    std::string y = ib == mb.end() ? "(absent)" : ib->second;
    if (x != y) differ(k, x, y);
  }
  if (a.n_layers == b.n_layers) {
    for (int l = 0; l < a.n_layers; ++l) {
      MixerShape sa = a.layer_shape(l), sb = b.layer_shape(l);
      std::string layer = "layer " + std::to_string(l);
      if (sa.heads != sb.heads)
        differ(layer + " heads", std::to_string(sa.heads), std::to_string(sb.heads));
      if (sa.d_state != sb.d_state)
        differ(layer + " d_state", std::to_string(sa.d_state), std::to_string(sb.d_state));
    }
  }
  return out;
}

void check_compatible(const Checkpoint& ck, const ModelConfig& expected, const std::string& path) {
  std::vector<std::string> diffs = model_mismatches(ck.model, expected);
  if (diffs.empty()) return;
  std::string msg = "checkpoint '" + path + "' was written for a different model: ";
  for (size_t i = 0; i < diffs.size(); ++i) msg += (i ? "; " : "") + diffs[i];
  throw ConfigError(msg);
}

}  // namespace statex
