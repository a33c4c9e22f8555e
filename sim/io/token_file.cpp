// Token files and eval output files: layouts in docs/results_format.md.
#include "sim/io/token_file.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "sim/core/config.h"
#include "sim/core/memory_budget.h"
#include "sim/io/h5.h"

namespace statex {
namespace {

constexpr const char* kTokensFormat = "statex-sim tokens";
constexpr const char* kEvalFormat = "statex-sim eval";

// Reads a 2-D integer dataset [N, T] as int32.
std::vector<int32_t> read_int_matrix(hid_t f, const std::string& name, std::vector<int64_t>* shape) {
  if (!h5::exists(f, name)) throw std::runtime_error("no '/" + name + "' dataset");
  if (h5::dataset_class(f, name) != H5T_INTEGER)
    throw std::runtime_error("'/" + name + "' must hold integers (int32 or int64)");
  std::vector<int64_t> sh = h5::dataset_shape(f, name);
  if (sh.size() != 2)
    throw std::runtime_error("'/" + name + "' must be 2-D [examples, positions], got shape " +
                             h5::shape_str(sh));
  *shape = sh;
  return h5::read_dataset<int32_t>(f, name);
}

void need_size(size_t got, int64_t want, const char* what) {
  if (static_cast<int64_t>(got) != want)
    throw std::runtime_error(std::string(what) + " has " + std::to_string(got) +
                             " values, expected " + std::to_string(want));
}

// Per-example [N] and per-position [N, T] datasets written by `statex data`; absent in files from
// other generators (h5py: only /tokens and /labels).
void read_optional_datasets(hid_t f, const std::vector<int64_t>& shape, TokenFile& tf) {
  auto per_example = [&](const char* name, std::vector<int32_t>& out) {
    if (!h5::exists(f, name)) return;
    std::vector<int64_t> sh;
    out = h5::read_dataset<int32_t>(f, name, &sh);
    if (sh != std::vector<int64_t>{shape[0]})
      throw std::runtime_error(std::string("'/") + name + "' has shape " + h5::shape_str(sh) +
                               ", expected [" + std::to_string(shape[0]) + "] (one per example)");
  };
  auto per_position = [&](const char* name, std::vector<int32_t>& out) {
    if (!h5::exists(f, name)) return;
    std::vector<int64_t> sh;
    out = read_int_matrix(f, name, &sh);
    if (sh != shape)
      throw std::runtime_error(std::string("'/") + name + "' has shape " + h5::shape_str(sh) +
                               " but '/tokens' has " + h5::shape_str(shape));
  };
  per_example("lengths", tf.lengths);
  per_example("segment", tf.segment);
  per_example("task", tf.task);
  per_position("distance", tf.distance);
  per_position("query_class", tf.query_class);
  for (auto& [k, v] : h5::read_str_attrs(f)) {
    if (k == "segments") {
      size_t start = 0;
      while (true) {
        const size_t c = v.find(',', start);
        tf.segment_names.push_back(v.substr(start, c == std::string::npos ? c : c - start));
        if (c == std::string::npos) break;
        start = c + 1;
      }
    } else if (k != "format") {
      tf.info[k] = v;
    }
  }
}

// The memory every dataset read_token_file reads would take, from the shapes the file declares,
// checked before any of it is read (a file may declare [10^12, 10^6] without storing a byte).
void check_token_file_size(hid_t f) {
  if (!h5::exists(f, "tokens")) return;  // read_int_matrix names it
  const std::vector<int64_t> shape = h5::dataset_shape(f, "tokens");
  if (shape.size() != 2) return;
  const double n = double(shape[0]) * double(shape[1]);
  double bytes = 0;
  for (const char* name : {"tokens", "labels", "distance", "query_class"})
    if (h5::exists(f, name)) bytes += 4.0 * n;
  for (const char* name : {"lengths", "segment", "task"})
    if (h5::exists(f, name)) bytes += 4.0 * double(shape[0]);
  require_memory(bytes, "reading it",
                 "'/tokens' declares shape " + h5::shape_str(shape) + ", int32 per position for " +
                     "tokens, labels and the optional per-position datasets",
                 "use a smaller token file");
  if (shape[0] > std::numeric_limits<int32_t>::max() ||
      shape[1] > std::numeric_limits<int32_t>::max())
    throw std::runtime_error("'/tokens' declares shape " + h5::shape_str(shape) + ": more than " +
                             "2^31-1 examples or positions, which no statex command reads");
}

}  // namespace

TokenFile read_token_file(const std::string& path) {
  try {
    h5::Handle f = h5::open_file(path);
    // `format` is optional so files made with h5py need only /tokens (and /labels).
    if (h5::has_attr(f, "format")) {
      std::string format = h5::read_attr_str(f, "format");
      if (format != kTokensFormat)
        throw std::runtime_error("field 'format' is '" + format + "', expected '" +
                                 kTokensFormat + "'");
    }
    TokenFile tf;
    check_token_file_size(f);
    std::vector<int64_t> shape;
    tf.tokens = read_int_matrix(f, "tokens", &shape);
    tf.num_examples = shape[0];
    tf.seq_len = shape[1];
    if (tf.num_examples == 0 || tf.seq_len == 0)
      throw std::runtime_error("'/tokens' is empty, shape " + h5::shape_str(shape));
    read_optional_datasets(f, shape, tf);
    tf.has_labels = h5::exists(f, "labels");
    if (tf.has_labels) {
      std::vector<int64_t> lshape;
      tf.labels = read_int_matrix(f, "labels", &lshape);
      if (lshape != shape)
        throw std::runtime_error("'/labels' has shape " + h5::shape_str(lshape) +
                                 " but '/tokens' has " + h5::shape_str(shape));
    }
    return tf;
  } catch (const std::exception& e) {
    throw ConfigError("token file '" + path + "': " + e.what());
  }
}

void write_token_file(const std::string& path, const TokenFile& tf) {
  const int64_t n = tf.num_examples * tf.seq_len;
  try {
    need_size(tf.tokens.size(), n, "tokens");
    if (tf.has_labels) need_size(tf.labels.size(), n, "labels");
    for (auto [name, v] : {std::pair{"lengths", &tf.lengths}, {"segment", &tf.segment},
                           {"task", &tf.task}})
      if (!v->empty()) need_size(v->size(), tf.num_examples, name);
    for (auto [name, v] : {std::pair{"distance", &tf.distance}, {"query_class", &tf.query_class}})
      if (!v->empty()) need_size(v->size(), n, name);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write token file '" + path + "': " + e.what());
  }
  h5::write_atomically(path, [&](hid_t f) {
    h5::write_attr(f, "format", kTokensFormat);
    h5::write_attr(f, "format_version", int32_t{1});
    h5::write_dataset<int32_t>(f, "tokens", tf.tokens.data(), {tf.num_examples, tf.seq_len});
    if (tf.has_labels)
      h5::write_dataset<int32_t>(f, "labels", tf.labels.data(), {tf.num_examples, tf.seq_len});
    for (auto [name, v] : {std::pair{"lengths", &tf.lengths}, {"segment", &tf.segment},
                           {"task", &tf.task}})
      if (!v->empty()) h5::write_dataset<int32_t>(f, name, v->data(), {tf.num_examples});
    for (auto [name, v] : {std::pair{"distance", &tf.distance}, {"query_class", &tf.query_class}})
      if (!v->empty())
        h5::write_dataset<int32_t>(f, name, v->data(), {tf.num_examples, tf.seq_len});
    if (!tf.segment_names.empty()) {
      std::string joined;
      for (size_t i = 0; i < tf.segment_names.size(); ++i)
        joined += (i ? "," : "") + tf.segment_names[i];
      h5::write_attr(f, "segments", joined);
    }
    for (auto& [k, v] : tf.info) h5::write_attr(f, k, v);
  });
}

std::string token_file_digest(const TokenFile& tf) {
  uLong crc = crc32(0L, Z_NULL, 0), adl = adler32(0L, Z_NULL, 0);
  auto add = [&](const void* data, size_t bytes) {
    const auto* p = static_cast<const Bytef*>(data);
    while (bytes > 0) {  // zlib takes uInt lengths
      const uInt n = static_cast<uInt>(std::min<size_t>(bytes, 1u << 30));
      crc = crc32(crc, p, n);
      adl = adler32(adl, p, n);
      p += n;
      bytes -= n;
    }
  };
  const int64_t shape[2] = {tf.num_examples, tf.seq_len};
  add(shape, sizeof shape);
  const std::pair<const char*, const std::vector<int32_t>*> arrays[] = {
      {"tokens", &tf.tokens}, {"labels", &tf.labels},     {"lengths", &tf.lengths},
      {"segment", &tf.segment}, {"task", &tf.task},       {"distance", &tf.distance},
      {"query_class", &tf.query_class}};
  for (const auto& [name, v] : arrays) {
    const int64_t n = static_cast<int64_t>(v->size());
    add(name, std::strlen(name) + 1);
    add(&n, sizeof n);
    add(v->data(), v->size() * sizeof(int32_t));
  }
  for (const std::string& name : tf.segment_names) add(name.c_str(), name.size() + 1);
  char buf[96];
  std::snprintf(buf, sizeof buf, "crc32:%08lx adler32:%08lx n:%lld t:%lld", crc, adl,
                static_cast<long long>(tf.num_examples), static_cast<long long>(tf.seq_len));
  return buf;
}

void check_token_range(const TokenFile& tf, int vocab_size, const std::string& path) {
  auto where = [&](size_t i) {
    return "example " + std::to_string(i / tf.seq_len) + ", position " +
           std::to_string(i % tf.seq_len);
  };
  const std::string vocab = "[0, " + std::to_string(vocab_size) + ")";
  for (size_t i = 0; i < tf.tokens.size(); ++i)
    if (tf.tokens[i] < 0 || tf.tokens[i] >= vocab_size)
      throw ConfigError("token file '" + path + "': token " + std::to_string(tf.tokens[i]) +
                        " at " + where(i) + " is outside the model vocabulary " + vocab);
  for (size_t i = 0; i < tf.labels.size(); ++i)
    if (tf.labels[i] != kIgnoreLabel && (tf.labels[i] < 0 || tf.labels[i] >= vocab_size))
      throw ConfigError("token file '" + path + "': label " + std::to_string(tf.labels[i]) +
                        " at " + where(i) + " is neither -100 (unlabelled) nor in " + vocab);
}

void write_eval_output(const std::string& path, const EvalOutput& o) {
  const int64_t N = o.num_examples, T = o.seq_len, V = o.vocab_size;
  const int64_t rows = o.all_positions ? N * T : static_cast<int64_t>(o.positions.size() / 2);
  try {
    need_size(o.predictions.size(), N * T, "predictions");
    if (!o.all_positions && o.positions.size() % 2 != 0)
      throw std::runtime_error("positions must hold (example, position) pairs");
    need_size(o.logits.size(), rows * V, "logits");
    if (o.has_labels) need_size(o.example_accuracy.size(), N, "example_accuracy");
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write eval output '" + path + "': " + e.what());
  }
  h5::write_atomically(path, [&](hid_t f) {
    h5::write_attr(f, "format", kEvalFormat);
    h5::write_attr(f, "format_version", int32_t{kEvalFormatVersion});
    h5::write_attr(f, "checkpoint", o.checkpoint);
    h5::write_attr(f, "token_file", o.token_file);
    h5::write_attr(f, "vocab_size", V);
    h5::write_attr(f, "all_positions", int32_t{o.all_positions ? 1 : 0});
    h5::write_attr(f, "has_labels", int32_t{o.has_labels ? 1 : 0});
    h5::write_attr(f, "labelled_positions", o.labelled_positions);
    h5::write_attr(f, "accuracy", o.accuracy);
    h5::write_attr(f, "token_accuracy", o.token_accuracy);
    h5::write_attr(f, "loss", o.loss);
    h5::write_dataset<int32_t>(f, "predictions", o.predictions.data(), {N, T});
    if (o.all_positions) {
      h5::write_dataset<float>(f, "logits", o.logits.data(), {N, T, V});
    } else {
      h5::write_dataset<float>(f, "logits", o.logits.data(), {rows, V});
      h5::write_dataset<int64_t>(f, "positions", o.positions.data(), {rows, 2});
    }
    if (o.has_labels) h5::write_dataset(f, "example_accuracy", o.example_accuracy);
  });
}

EvalOutput read_eval_output(const std::string& path) {
  try {
    h5::Handle f = h5::open_file(path);
    std::string format = h5::has_attr(f, "format") ? h5::read_attr_str(f, "format") : "";
    if (format != kEvalFormat)
      throw std::runtime_error("field 'format' is '" + format + "', expected '" + kEvalFormat + "'");
    int64_t version = h5::read_attr_i64(f, "format_version");
    if (version != kEvalFormatVersion)
      throw std::runtime_error("field 'format_version' is " + std::to_string(version) +
                               "; this build reads only version " +
                               std::to_string(kEvalFormatVersion));
    EvalOutput o;
    o.checkpoint = h5::read_attr_str(f, "checkpoint");
    o.token_file = h5::read_attr_str(f, "token_file");
    o.vocab_size = h5::read_attr_i64(f, "vocab_size");
    o.all_positions = h5::read_attr_i64(f, "all_positions") != 0;
    o.has_labels = h5::read_attr_i64(f, "has_labels") != 0;
    o.labelled_positions = h5::read_attr_i64(f, "labelled_positions");
    o.accuracy = static_cast<float>(h5::read_attr_f64(f, "accuracy"));
    o.token_accuracy = static_cast<float>(h5::read_attr_f64(f, "token_accuracy"));
    o.loss = static_cast<float>(h5::read_attr_f64(f, "loss"));
    std::vector<int64_t> shape;
    o.predictions = h5::read_dataset<int32_t>(f, "predictions", &shape);
    if (shape.size() != 2) throw std::runtime_error("'/predictions' must be 2-D");
    o.num_examples = shape[0];
    o.seq_len = shape[1];
    o.logits = h5::read_dataset<float>(f, "logits");
    if (!o.all_positions) o.positions = h5::read_dataset<int64_t>(f, "positions");
    if (o.has_labels) o.example_accuracy = h5::read_dataset<float>(f, "example_accuracy");
    return o;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read eval output '" + path + "': " + e.what());
  }
}

}  // namespace statex
