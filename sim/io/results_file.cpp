// Results file writer/reader: exactly the layout in docs/results_format.md.
#include "sim/io/results_file.h"

#include "sim/core/provenance.h"

#include <cctype>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "sim/core/config.h"
#include "sim/core/provenance.h"
#include "sim/io/h5.h"

namespace statex {
namespace {

constexpr const char* kFormat = "statex-sim results";
constexpr int64_t kBytesPerScalar = 4;  // fp32 state

// Attributes cannot carry attributes, so an attribute's unit is a sibling "<name>_unit".
template <class T>
void attr_with_unit(hid_t obj, const std::string& name, T value, const char* unit) {
  h5::write_attr(obj, name, value);
  h5::write_attr(obj, name + "_unit", unit);
}

void dataset_unit(const h5::Handle& dset, const char* unit) { h5::write_attr(dset, "unit", unit); }

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "," : "") + parts[i];
  return s;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t pos = 0;
  while (true) {
    size_t comma = s.find(',', pos);
    out.push_back(s.substr(pos, comma - pos));
    if (comma == std::string::npos) return out;
    pos = comma + 1;
  }
}

std::vector<int64_t> times(const std::vector<int64_t>& v, int64_t k) {
  std::vector<int64_t> out(v);
  for (int64_t& x : out) x *= k;
  return out;
}

// Packs per-eval rows into a row-major [E, width] matrix; all rows must have the same width.
template <class T>
std::vector<T> matrix_of(const std::vector<EvalPoint>& evals,
                         const std::vector<T> EvalPoint::*row, size_t fallback_width,
                         const char* field, int64_t* width) {
  size_t w = evals.empty() ? fallback_width : (evals[0].*row).size();
  std::vector<T> out;
  out.reserve(evals.size() * w);
  for (const EvalPoint& e : evals) {
    if ((e.*row).size() != w)
      throw std::runtime_error(std::string("eval at step ") + std::to_string(e.step) + " has " +
                               std::to_string((e.*row).size()) + " " + field + " entries, " +
                               "expected " + std::to_string(w) + " like the other evals");
    out.insert(out.end(), (e.*row).begin(), (e.*row).end());
  }
  *width = static_cast<int64_t>(w);
  return out;
}

// Plateau escape (docs/results_format.md, "Plateau escape"): K = the smallest number of KV
// pairs among the test segments "[task:]T:K:count[:opt=v...]" (docs/tasks.md); -1 when no
// segment names one.
int64_t plateau_num_kv(const std::vector<std::string>& segments) {
  int64_t k_min = -1;
  for (const std::string& text : segments) {
    const bool named = !text.empty() && std::isalpha(static_cast<unsigned char>(text[0]));
    const std::string seg = named ? text.substr(text.find(':') + 1) : text;  // drop "task:"
    size_t a = seg.find(':'), b = seg.find(':', a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    try {
      int64_t k = std::stoll(seg.substr(a + 1, b - a - 1));
      if (k > 0 && (k_min < 0 || k < k_min)) k_min = k;
    } catch (const std::exception&) {
      continue;  // not a number: this segment names no K
    }
  }
  return k_min;
}

// min(3/K, (1 + 1/K)/2): three times the 1/K plateau, capped halfway to perfect recall so that
// small K keeps a reachable threshold. NaN when K is unknown.
double plateau_threshold(int64_t k) {
  if (k <= 0) return std::numeric_limits<double>::quiet_NaN();
  double plateau = 1.0 / static_cast<double>(k);
  return std::min(3.0 * plateau, 0.5 * (1.0 + plateau));
}

void write_plateau_escape(hid_t f, const RunRecord& r) {
  int64_t k = plateau_num_kv(r.test_segments), escape_step = -1;
  double threshold = plateau_threshold(k);
  for (const EvalPoint& e : r.evals) {
    if (static_cast<double>(e.accuracy) > threshold) {  // strictly above; NaN never is
      escape_step = e.step;
      break;
    }
  }
  h5::write_attr(f, "plateau_num_kv", k);
  h5::write_attr(f, "plateau_threshold", threshold);
  attr_with_unit(f, "escape_step", escape_step, "steps");
}

void write_root(hid_t f, const RunRecord& r) {
  h5::write_attr(f, "format", kFormat);
  h5::write_attr(f, "format_version", int32_t{kResultsFormatVersion});
  h5::write_attr(f, "status", r.status);
  h5::write_attr(f, "failure_reason", r.failure_reason);
  h5::write_attr(f, "resume_log", r.resume_log);
  h5::write_attr(f, "arm", r.arm);
  h5::write_attr(f, "run_uid", r.run_uid);
  h5::write_attr(f, "data_digests", r.data_digests);
  attr_with_unit(f, "wall_time_s", r.wall_time_s, "s");
  attr_with_unit(f, "steps_done", r.steps_done, "steps");
  attr_with_unit(f, "tokens_seen", r.tokens_seen, "tokens");

  // Summary for quick reading: NaN / -1 when there was no eval.
  float final_acc = std::numeric_limits<float>::quiet_NaN(), best_acc = final_acc;
  int64_t best_step = -1;
  for (const EvalPoint& e : r.evals) {
    if (best_step < 0 || e.accuracy > best_acc) {
      best_acc = e.accuracy;
      best_step = e.step;
    }
    final_acc = e.accuracy;
  }
  h5::write_attr(f, "final_accuracy", final_acc);
  h5::write_attr(f, "best_accuracy", best_acc);
  attr_with_unit(f, "best_step", best_step, "steps");
  write_plateau_escape(f, r);
}

void write_config_build_seeds(hid_t f, const RunRecord& r) {
  h5::Handle cfg = h5::create_group(f, "config");
  for (const auto& [name, value] : r.config) h5::write_attr(cfg, name, value);
  h5::write_str_dataset(cfg, "ini", r.config_ini);

  h5::Handle b = h5::create_group(f, "build");
  h5::write_attr(b, "git_commit", r.git_commit);
  h5::write_attr(b, "compiler", r.compiler);
  h5::write_attr(b, "cxx_flags", r.cxx_flags);
  h5::write_attr(b, "build_type", r.build_type);
  h5::write_attr(b, "device", r.device);
  h5::write_attr(b, "hostname", r.hostname);
  h5::write_attr(b, "cuda_enabled", int32_t{r.cuda_enabled ? 1 : 0});
  h5::write_attr(b, "omp_threads", int32_t{r.omp_threads});
  for (const auto& [name, value] : r.provenance)
    if (name != "cxx_flags") h5::write_attr(b, name, value);  // cxx_flags is written above

  h5::Handle s = h5::create_group(f, "seeds");
  h5::write_attr(s, "param_seed", uint64_t{r.param_seed});
  h5::write_attr(s, "train_data_seed", uint64_t{r.train_data_seed});
  h5::write_attr(s, "test_data_seed", uint64_t{r.test_data_seed});
}

void write_model(hid_t f, const RunRecord& r) {
  h5::Handle m = h5::create_group(f, "model");
  h5::write_attr(m, "model", r.model);
  attr_with_unit(m, "n_params", r.n_params, "scalars");
  int64_t state = r.state.total_state_scalars(), conv = r.state.total_conv_state_scalars();
  attr_with_unit(m, "state_scalars", state, "scalars");
  attr_with_unit(m, "state_bytes", state * kBytesPerScalar, "bytes");
  attr_with_unit(m, "conv_state_scalars", conv, "scalars");
  attr_with_unit(m, "conv_state_bytes", conv * kBytesPerScalar, "bytes");
  // The recurrent+conv convention: both summed (docs/results_format.md).
  attr_with_unit(m, "state_with_conv_scalars", state + conv, "scalars");
  attr_with_unit(m, "state_with_conv_bytes", (state + conv) * kBytesPerScalar, "bytes");
  // The zoology convention: Zoology's own state_size() per family (sim/model/state_size.h);
  // zoology_state_bytes is the number Zoology logs as "state_size".
  const auto& lz = r.state.layer_zoology_state_scalars;
  const bool zoology = lz.size() == r.state.layer_state_scalars.size();
  if (zoology) {
    const int64_t zoo = r.state.total_zoology_state_scalars();
    attr_with_unit(m, "zoology_state_scalars", zoo, "scalars");
    attr_with_unit(m, "zoology_state_bytes", zoo * kBytesPerScalar, "bytes");
  }
  // "recurrent", or "kv_cache" (attention: state_* is the KV cache at length kv_cache_len).
  h5::write_attr(m, "state_kind", std::string(r.state.is_kv_cache() ? "kv_cache" : "recurrent"));
  attr_with_unit(m, "kv_cache_len", r.state.kv_cache_len, "tokens");
  const auto& ls = r.state.layer_state_scalars;
  const auto& lc = r.state.layer_conv_state_scalars;
  dataset_unit(h5::write_dataset(m, "layer_state_scalars", ls), "scalars");
  dataset_unit(h5::write_dataset(m, "layer_state_bytes", times(ls, kBytesPerScalar)), "bytes");
  dataset_unit(h5::write_dataset(m, "layer_conv_state_scalars", lc), "scalars");
  dataset_unit(h5::write_dataset(m, "layer_conv_state_bytes", times(lc, kBytesPerScalar)),
               "bytes");
  if (zoology) {
    dataset_unit(h5::write_dataset(m, "layer_zoology_state_scalars", lz), "scalars");
    dataset_unit(h5::write_dataset(m, "layer_zoology_state_bytes", times(lz, kBytesPerScalar)),
                 "bytes");
  }
}

void write_curves(hid_t f, const RunRecord& r) {
  h5::Handle c = h5::create_group(f, "curves");
  size_t n = r.curve.size();
  std::vector<int64_t> step(n);
  std::vector<float> loss(n), lr(n), gn(n), tps(n);
  for (size_t i = 0; i < n; ++i) {
    const CurvePoint& p = r.curve[i];
    step[i] = p.step, loss[i] = p.loss, lr[i] = p.lr, gn[i] = p.grad_norm, tps[i] = p.tokens_per_s;
  }
  dataset_unit(h5::write_dataset(c, "step", step), "steps");
  dataset_unit(h5::write_dataset(c, "loss", loss), "nats");
  h5::write_dataset(c, "lr", lr);
  h5::write_dataset(c, "grad_norm", gn);
  dataset_unit(h5::write_dataset(c, "tokens_per_s", tps), "tokens/s");
}

void write_evals(hid_t f, const RunRecord& r) {
  h5::Handle g = h5::create_group(f, "eval");
  size_t n = r.evals.size();
  std::vector<int64_t> step(n);
  std::vector<float> loss(n), acc(n);
  for (size_t i = 0; i < n; ++i) {
    step[i] = r.evals[i].step, loss[i] = r.evals[i].loss, acc[i] = r.evals[i].accuracy;
  }
  const int64_t E = static_cast<int64_t>(n);
  dataset_unit(h5::write_dataset(g, "step", step), "steps");
  dataset_unit(h5::write_dataset(g, "loss", loss), "nats");
  h5::write_dataset(g, "accuracy", acc);

  int64_t nseg = 0, nbucket = 0, ncount = 0;
  auto seg = matrix_of(r.evals, &EvalPoint::segment_accuracy, r.test_segments.size(),
                       "segment_accuracy", &nseg);
  auto gap = matrix_of(r.evals, &EvalPoint::gap_accuracy, r.gap_bucket_edges.size(),
                       "gap_accuracy", &nbucket);
  auto cnt = matrix_of(r.evals, &EvalPoint::gap_count, r.gap_bucket_edges.size(), "gap_count",
                       &ncount);
  if (ncount != nbucket)
    throw std::runtime_error("gap_count has " + std::to_string(ncount) + " buckets but " +
                             "gap_accuracy has " + std::to_string(nbucket));
  h5::Handle sd = h5::write_dataset(g, "segment_accuracy", seg.data(), {E, nseg});
  h5::write_attr(sd, "segments", join(r.test_segments));
  h5::write_dataset(g, "gap_accuracy", gap.data(), {E, nbucket});
  h5::write_dataset(g, "gap_count", cnt.data(), {E, nbucket});
  dataset_unit(h5::write_dataset(g, "gap_bucket_edges", r.gap_bucket_edges), "tokens");
  if (r.query_classes.empty()) return;
  int64_t nclass = 0, nclass_count = 0;
  auto cacc = matrix_of(r.evals, &EvalPoint::class_accuracy, r.query_classes.size(),
                        "class_accuracy", &nclass);
  auto ccnt = matrix_of(r.evals, &EvalPoint::class_count, r.query_classes.size(), "class_count",
                        &nclass_count);
  h5::Handle cd = h5::write_dataset(g, "class_accuracy", cacc.data(), {E, nclass});
  h5::write_attr(cd, "classes", join(r.query_classes));
  h5::write_dataset(g, "class_count", ccnt.data(), {E, nclass_count});
}

void write_statex(hid_t f, const ExpansionEvent& x) {
  if (!x.happened) return;
  h5::Handle g = h5::create_group(f, "statex");
  attr_with_unit(g, "step", x.step, "steps");
  h5::write_attr(g, "mode", x.mode);
  h5::write_attr(g, "layers", std::vector<int32_t>(x.layers.begin(), x.layers.end()));
  attr_with_unit(g, "state_scalars_before", x.state_scalars_before, "scalars");
  attr_with_unit(g, "state_scalars_after", x.state_scalars_after, "scalars");
  attr_with_unit(g, "params_before", x.params_before, "scalars");
  attr_with_unit(g, "params_after", x.params_after, "scalars");
  h5::write_attr(g, "accuracy_before", x.accuracy_before);
  h5::write_attr(g, "accuracy_after", x.accuracy_after);
  h5::write_attr(g, "accuracy_end", x.accuracy_end);
}

// /valid (only with a validation split): the validation evals at the /eval steps, and a summary
// chosen on them alone: best_accuracy / best_step (first maximum), final_accuracy, and
// test_accuracy_at_best, the /eval accuracy at best_step (what a protocol that never looks at
// the test set reports; docs/results_format.md).
void write_valid(hid_t f, const RunRecord& r) {
  if (!r.has_valid) return;
  h5::Handle g = h5::create_group(f, "valid");
  h5::write_attr(g, "split", std::string("valid"));
  h5::write_attr(g, "data_seed", uint64_t{r.valid_data_seed});
  float final_acc = std::numeric_limits<float>::quiet_NaN(), best_acc = final_acc,
        test_at_best = final_acc;
  int64_t best_step = -1;
  const size_t n = r.valid_evals.size();
  std::vector<int64_t> step(n);
  std::vector<float> loss(n), acc(n);
  for (size_t i = 0; i < n; ++i) {
    const EvalPoint& e = r.valid_evals[i];
    step[i] = e.step, loss[i] = e.loss, acc[i] = e.accuracy;
    if (best_step < 0 || e.accuracy > best_acc) best_acc = e.accuracy, best_step = e.step;
    final_acc = e.accuracy;
  }
  for (const EvalPoint& e : r.evals)
    if (e.step == best_step) test_at_best = e.accuracy;
  h5::write_attr(g, "final_accuracy", final_acc);
  h5::write_attr(g, "best_accuracy", best_acc);
  attr_with_unit(g, "best_step", best_step, "steps");
  h5::write_attr(g, "test_accuracy_at_best", test_at_best);
  const int64_t E = static_cast<int64_t>(n);
  dataset_unit(h5::write_dataset(g, "step", step), "steps");
  dataset_unit(h5::write_dataset(g, "loss", loss), "nats");
  h5::write_dataset(g, "accuracy", acc);
  int64_t nseg = 0;
  auto seg = matrix_of(r.valid_evals, &EvalPoint::segment_accuracy, r.valid_segments.size(),
                       "valid segment_accuracy", &nseg);
  h5::Handle sd = h5::write_dataset(g, "segment_accuracy", seg.data(), {E, nseg});
  h5::write_attr(sd, "segments", join(r.valid_segments));
}

// Splits a row-major [E, width] matrix back into the evals.
template <class T>
void unpack_rows(const std::vector<T>& m, int64_t width, std::vector<EvalPoint>& evals,
                 std::vector<T> EvalPoint::*row) {
  for (size_t i = 0; i < evals.size(); ++i)
    evals[i].*row = std::vector<T>(m.begin() + i * width, m.begin() + (i + 1) * width);
}

int64_t width_of(const std::vector<int64_t>& shape, int64_t rows, const std::string& name) {
  if (shape.size() != 2 || shape[0] != rows)
    throw std::runtime_error("'/eval/" + name + "' has shape " + h5::shape_str(shape) +
                             ", expected [" + std::to_string(rows) + ", n]");
  return shape[1];
}

RunRecord read_all(hid_t f) {
  RunRecord r;
  r.status = h5::read_attr_str(f, "status");
  r.failure_reason = h5::read_attr_str(f, "failure_reason");
  if (h5::has_attr(f, "resume_log")) r.resume_log = h5::read_attr_str(f, "resume_log");
  r.arm = h5::read_attr_str(f, "arm");
  if (h5::has_attr(f, "run_uid")) r.run_uid = h5::read_attr_str(f, "run_uid");
  if (h5::has_attr(f, "data_digests")) r.data_digests = h5::read_attr_str(f, "data_digests");
  r.wall_time_s = h5::read_attr_f64(f, "wall_time_s");
  r.steps_done = h5::read_attr_i64(f, "steps_done");
  r.tokens_seen = h5::read_attr_f64(f, "tokens_seen");

  h5::Handle cfg = h5::open_group(f, "config");
  r.config = h5::read_str_attrs(cfg);
  r.config_ini = h5::read_str_dataset(cfg, "ini");

  h5::Handle b = h5::open_group(f, "build");
  r.git_commit = h5::read_attr_str(b, "git_commit");
  r.compiler = h5::read_attr_str(b, "compiler");
  r.cxx_flags = h5::read_attr_str(b, "cxx_flags");
  r.build_type = h5::read_attr_str(b, "build_type");
  r.device = h5::read_attr_str(b, "device");
  r.hostname = h5::read_attr_str(b, "hostname");
  r.cuda_enabled = h5::read_attr_i64(b, "cuda_enabled") != 0;
  r.omp_threads = static_cast<int>(h5::read_attr_i64(b, "omp_threads"));
  for (const auto& [name, value] : provenance().fields())
    if (name != "cxx_flags" && h5::has_attr(b, name))
      r.provenance.emplace_back(name, h5::read_attr_str(b, name));

  h5::Handle s = h5::open_group(f, "seeds");
  r.param_seed = h5::read_attr_u64(s, "param_seed");
  r.train_data_seed = h5::read_attr_u64(s, "train_data_seed");
  r.test_data_seed = h5::read_attr_u64(s, "test_data_seed");

  h5::Handle m = h5::open_group(f, "model");
  r.model = h5::read_attr_str(m, "model");
  r.n_params = h5::read_attr_i64(m, "n_params");
  r.state.layer_state_scalars = h5::read_dataset<int64_t>(m, "layer_state_scalars");
  r.state.layer_conv_state_scalars = h5::read_dataset<int64_t>(m, "layer_conv_state_scalars");
  if (h5::has_attr(m, "kv_cache_len")) r.state.kv_cache_len = h5::read_attr_i64(m, "kv_cache_len");
  if (h5::exists(m, "layer_zoology_state_scalars"))  // files from before it: left empty
    r.state.layer_zoology_state_scalars = h5::read_dataset<int64_t>(m, "layer_zoology_state_scalars");

  h5::Handle c = h5::open_group(f, "curves");
  auto step = h5::read_dataset<int64_t>(c, "step");
  auto loss = h5::read_dataset<float>(c, "loss");
  auto lr = h5::read_dataset<float>(c, "lr");
  auto gn = h5::read_dataset<float>(c, "grad_norm");
  auto tps = h5::read_dataset<float>(c, "tokens_per_s");
  if (loss.size() != step.size() || lr.size() != step.size() || gn.size() != step.size() ||
      tps.size() != step.size())
    throw std::runtime_error("the /curves datasets have different lengths");
  r.curve.resize(step.size());
  for (size_t i = 0; i < step.size(); ++i) r.curve[i] = {step[i], loss[i], lr[i], gn[i], tps[i]};

  h5::Handle g = h5::open_group(f, "eval");
  auto estep = h5::read_dataset<int64_t>(g, "step");
  auto eloss = h5::read_dataset<float>(g, "loss");
  auto eacc = h5::read_dataset<float>(g, "accuracy");
  const int64_t E = static_cast<int64_t>(estep.size());
  if (static_cast<int64_t>(eloss.size()) != E || static_cast<int64_t>(eacc.size()) != E)
    throw std::runtime_error("the /eval datasets have different lengths");
  r.evals.resize(E);
  for (int64_t i = 0; i < E; ++i) {
    r.evals[i].step = estep[i], r.evals[i].loss = eloss[i], r.evals[i].accuracy = eacc[i];
  }
  std::vector<int64_t> shape;
  auto seg = h5::read_dataset<float>(g, "segment_accuracy", &shape);
  unpack_rows(seg, width_of(shape, E, "segment_accuracy"), r.evals, &EvalPoint::segment_accuracy);
  auto gap = h5::read_dataset<float>(g, "gap_accuracy", &shape);
  unpack_rows(gap, width_of(shape, E, "gap_accuracy"), r.evals, &EvalPoint::gap_accuracy);
  auto cnt = h5::read_dataset<int64_t>(g, "gap_count", &shape);
  unpack_rows(cnt, width_of(shape, E, "gap_count"), r.evals, &EvalPoint::gap_count);
  r.gap_bucket_edges = h5::read_dataset<int64_t>(g, "gap_bucket_edges");
  {
    h5::Handle sd = h5::open_dataset(g, "segment_accuracy");
    r.test_segments = split(h5::read_attr_str(sd, "segments"));
  }
  if (h5::exists(g, "class_accuracy")) {  // absent in files written before the task variants
    auto cacc = h5::read_dataset<float>(g, "class_accuracy", &shape);
    unpack_rows(cacc, width_of(shape, E, "class_accuracy"), r.evals, &EvalPoint::class_accuracy);
    auto ccnt = h5::read_dataset<int64_t>(g, "class_count", &shape);
    unpack_rows(ccnt, width_of(shape, E, "class_count"), r.evals, &EvalPoint::class_count);
    h5::Handle cd = h5::open_dataset(g, "class_accuracy");
    r.query_classes = split(h5::read_attr_str(cd, "classes"));
  }

  if (h5::exists(f, "valid")) {
    h5::Handle v = h5::open_group(f, "valid");
    r.has_valid = true;
    r.valid_data_seed = h5::read_attr_u64(v, "data_seed");
    auto vstep = h5::read_dataset<int64_t>(v, "step");
    auto vloss = h5::read_dataset<float>(v, "loss");
    auto vacc = h5::read_dataset<float>(v, "accuracy");
    const int64_t V = static_cast<int64_t>(vstep.size());
    if (static_cast<int64_t>(vloss.size()) != V || static_cast<int64_t>(vacc.size()) != V)
      throw std::runtime_error("the /valid datasets have different lengths");
    r.valid_evals.resize(V);
    for (int64_t i = 0; i < V; ++i) {
      r.valid_evals[i].step = vstep[i], r.valid_evals[i].loss = vloss[i];
      r.valid_evals[i].accuracy = vacc[i];
    }
    auto vseg = h5::read_dataset<float>(v, "segment_accuracy", &shape);
    if (shape.size() != 2 || shape[0] != V)
      throw std::runtime_error("'/valid/segment_accuracy' has shape " + h5::shape_str(shape) +
                               ", expected [" + std::to_string(V) + ", n]");
    unpack_rows(vseg, shape[1], r.valid_evals, &EvalPoint::segment_accuracy);
    h5::Handle sd = h5::open_dataset(v, "segment_accuracy");
    r.valid_segments = split(h5::read_attr_str(sd, "segments"));
  }

  if (h5::exists(f, "statex")) {
    h5::Handle x = h5::open_group(f, "statex");
    ExpansionEvent& e = r.expansion;
    e.happened = true;
    e.step = h5::read_attr_i64(x, "step");
    e.mode = h5::read_attr_str(x, "mode");
    for (int64_t l : h5::read_attr_i64_vec(x, "layers")) e.layers.push_back(static_cast<int>(l));
    e.state_scalars_before = h5::read_attr_i64(x, "state_scalars_before");
    e.state_scalars_after = h5::read_attr_i64(x, "state_scalars_after");
    e.params_before = h5::read_attr_i64(x, "params_before");
    e.params_after = h5::read_attr_i64(x, "params_after");
    e.accuracy_before = static_cast<float>(h5::read_attr_f64(x, "accuracy_before"));
    e.accuracy_after = static_cast<float>(h5::read_attr_f64(x, "accuracy_after"));
    e.accuracy_end = static_cast<float>(h5::read_attr_f64(x, "accuracy_end"));
  }
  return r;
}

}  // namespace

void write_results(const std::string& path, const RunRecord& rec) {
  h5::write_atomically(path, [&](hid_t f) {
    write_root(f, rec);
    write_config_build_seeds(f, rec);
    write_model(f, rec);
    write_curves(f, rec);
    write_evals(f, rec);
    write_valid(f, rec);
    write_statex(f, rec.expansion);
  });
}

RunRecord read_results(const std::string& path) {
  try {
    h5::Handle f = h5::open_file(path);
    if (!h5::has_attr(f, "format"))
      throw std::runtime_error("no 'format' attribute: not a statex-sim results file");
    std::string format = h5::read_attr_str(f, "format");
    if (format != kFormat)
      throw std::runtime_error("field 'format' is '" + format + "', expected '" + kFormat + "'");
    int64_t version = h5::read_attr_i64(f, "format_version");
    if (version != kResultsFormatVersion)
      throw std::runtime_error("field 'format_version' is " + std::to_string(version) +
                               "; this build reads only version " +
                               std::to_string(kResultsFormatVersion));
    return read_all(f);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read results file '" + path + "': " + e.what());
  }
}

void check_writable(const std::string& path, const std::string& option) {
  try {
    h5::check_writable(path);
  } catch (const std::exception& e) {
    throw ConfigError(option + " '" + path + "': cannot write there: " + e.what());
  }
}

}  // namespace statex
