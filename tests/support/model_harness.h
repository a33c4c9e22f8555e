#pragma once
// Shared helpers for the model / StateX / trainer / CLI tests: tiny configs, a hand-made batch,
// a CPU model rig whose loss can be re-evaluated at any parameter vector, and the whole-model
// finite-difference gradient check (per tensor).
//
// FD policy for the whole model (fp32 forward, loss = mean CE ~ log V ~ 3.6):
//  * the loss is re-summed in double from the fp32 per-position losses (noise ~1e-8; the float
//    that Model::forward returns is quantised at 2.4e-7, too coarse for element derivatives).
//  * per tensor, a directional check: v = random ±1 over the tensor's elements (other tensors
//    untouched), numeric derivative along v (Richardson over h and h/2) against the analytic g·v.
//    g·v sums many elements, so it is large compared with the noise; tolerance atol 1e-4 +
//    rtol 2e-3 (measured errors are <= 3e-5 absolute on these configs).
//  * per tensor, a sample of single elements with the shared fd_check at h = 2e-3, atol 5e-5 +
//    rtol 1e-2 (measured noise floor ~1.5e-5), which catches an error in one element that the
//    direction could average out.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sim/core/backend.h"
#include "sim/core/config.h"
#include "sim/model/model.h"
#include "sim/model/param_layout.h"
#include "sim/task/mqar.h"
#include "sim/train/device_batch.h"
#include "tests/support/errors.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex::testing {

// ---- small utilities ----

// A fresh directory under /tmp, removed with its contents when the object goes.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "statex_test") {
    std::string t = "/tmp/" + tag + "_XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = buf.data();
  }
  ~TempDir() { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

inline bool file_exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

// Names of the entries of a directory (excluding . and ..), sorted.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Runs fn, expects it to throw E, and returns the message.

inline bool bit_equal(const float* a, const float* b, size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(float)) == 0;
}

// ---- tiny configs ----

inline ModelConfig tiny_gla(bool short_conv = true) {
  ModelConfig c;
  c.model = "gla";
  c.vocab_size = 37;
  c.d_model = 20;
  c.n_layers = 2;
  c.heads = 2;  // Dk = 10 (K = 5), Dv = 20 (Vh = 10)
  c.use_short_conv = short_conv;
  c.gate_low_rank = 6;
  return c;
}

inline ModelConfig tiny_gated_deltanet(bool short_conv = true) {
  ModelConfig c = tiny_gla(short_conv);
  c.model = "gated_deltanet";  // Dk = 10 (K = 5), Dv = 20 (V = 10)
  return c;
}

inline ModelConfig tiny_mamba2(int ngroups = 1, int d_state = 8, int head_dim = 8) {
  ModelConfig c;
  c.model = "mamba2";
  c.vocab_size = 37;
  c.d_model = 20;
  c.n_layers = 2;
  c.expand = 2;  // d_inner = 40
  c.head_dim = head_dim;
  c.ngroups = ngroups;
  c.d_state = d_state;
  return c;
}

// Attention at the odd shapes of the op tests: D = 60 as 3 heads of 20 (not a power of two).
inline ModelConfig tiny_attention(bool short_conv = true, bool rope = true) {
  ModelConfig c;
  c.model = "attention";
  c.vocab_size = 37;
  c.d_model = 60;
  c.n_layers = 2;
  c.heads = 3;
  c.use_short_conv = short_conv;
  c.rope = rope;
  return c;
}

// ---- a hand-made batch: random tokens, about half the positions labelled ----

inline MqarBatch random_batch(int B, int T, int V, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(0, V - 1);
  MqarBatch b;
  b.B = B;
  b.T = T;
  b.inputs.resize(size_t(B) * T);
  for (auto& x : b.inputs) x = tok(rng);
  for (int e = 0; e < B; ++e)
    for (int t = 0; t < T; ++t)
      if (t % 2 == 1 || t == T - 1 || t == 0) {  // first and last positions included
        b.label_row.push_back(e * T + t);
        b.label_target.push_back(tok(rng));
        b.label_distance.push_back(-1);
        b.label_example.push_back(e);
      }
  return b;
}

// ---- a CPU model with a fixed batch ----

struct ModelRig {
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> model;
  std::unique_ptr<DeviceBatchBuffer> buf;
  MqarBatch host;
  DeviceBatch batch;

  ModelRig(const ModelConfig& cfg, const MqarBatch& b, int chunk, uint64_t seed = 7,
           const std::vector<float>* params = nullptr)
      : be(make_cpu_backend()), host(b) {
    model = std::make_unique<Model>(cfg, *be, b.B * b.T, chunk, chunk);
    buf = std::make_unique<DeviceBatchBuffer>(*be);
    batch = buf->upload(host);
    if (params) {
      model->set_params(*params);
    } else {
      std::vector<float> p;
      init_params(model->config(), model->table(), seed, p);
      model->set_params(p);
    }
  }
  // Mean loss summed in double from the per-position losses (Model::forward returns it rounded
  // to float, whose ulp at ~3.6 would be the FD noise floor).
  double loss_at(const std::vector<float>& p) {
    model->set_params(p);
    model->forward(batch);
    return mean_label_loss();
  }
  double mean_label_loss() {
    std::vector<float> l(batch.M);
    be->to_host(l.data(), model->label_losses(), l.size() * sizeof(float));
    double s = 0;
    for (float x : l) s += x;
    return s / batch.M;
  }
  // Loss and gradient at the current parameters.
  double loss_and_grads(std::vector<float>& grads) {
    model->zero_grads();
    double l = model->forward(batch);
    model->backward(batch);
    grads = model->get_grads();
    return l;
  }
  std::vector<float> logits() {
    std::vector<float> v(size_t(batch.M) * model->config().vocab_size);
    be->to_host(v.data(), model->label_logits(), v.size() * sizeof(float));
    return v;
  }
};

// Makes the parameters less trivial than the init (which has every norm weight at one and
// biases at zero): adds small noise to every tensor so that each one has a gradient worth
// checking.
inline void perturb_params(std::vector<float>& p, unsigned seed, float amp = 0.05f) {
  std::vector<float> n = random_vector(p.size(), seed, -amp, amp);
  for (size_t i = 0; i < p.size(); ++i) p[i] += n[i];
}

// Moves the gate parameters into a regime where they matter, so their gradients are well above
// the FD noise: at init the Mamba2 dt (1e-3..1e-1) and the GLA gate (logsigmoid / 16) barely
// touch the loss, and their derivatives would sit near the noise floor.
//   Mamba2: dt_bias ~ U[-1, 0.5] (dt ~ 0.3..1), A_log = log U[0.3, 2].
//   GLA:    gk_proj.1.bias ~ U[-2, 2] (use with a small model.gate_logit_normalizer).
//   Gated DeltaNet: dt_bias and A_log as Mamba2 (its decay has the same form).
inline void liven_gates(const ParamTable& t, std::vector<float>& p, unsigned seed) {
  std::mt19937 rng(seed);
  auto ends = [](const std::string& s, const std::string& x) {
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  for (const ParamEntry& e : t.entries()) {
    float lo = 0, hi = 0;
    bool log = false;
    if (ends(e.name, "mixer.dt_bias") || ends(e.name, "attn.dt_bias")) lo = -1.f, hi = 0.5f;
    else if (ends(e.name, "mixer.A_log") || ends(e.name, "attn.A_log"))
      lo = 0.3f, hi = 2.f, log = true;
    else if (ends(e.name, "gk_proj.1.bias")) lo = -2.f, hi = 2.f;
    else continue;
    std::uniform_real_distribution<float> u(lo, hi);
    for (int64_t i = 0; i < e.numel(); ++i) p[e.offset + i] = log ? std::log(u(rng)) : u(rng);
  }
}

struct TensorFd {
  std::string name;
  double dir_analytic = 0, dir_numeric = 0, dir_excess = 0;
  FdResult elem;
};

// Whole-model FD check of every parameter tensor at parameters p. Returns one row per tensor.
// Directional: Richardson-extrapolated central differences at h and h/2 (truncation O(h^4); the
// ±1 direction moves every element of the tensor at once, and tensors with a small scale such as
// the 0.02-init embedding are strongly curved along it). Elements: plain central differences.
// Loss noise (double mean of fp32 per-position losses) is ~1e-8, i.e. ~1e-5 in a derivative.
inline std::vector<TensorFd> whole_model_fd(ModelRig& rig, std::vector<float> p,
                                            size_t elems_per_tensor = 6, double h_dir = 1e-3,
                                            double h_elem = 2e-3) {
  // Hundreds of tiny forwards: one thread is ~10x faster than OpenMP's fork/join on a loaded box
  // (threaded op paths have their own tests).
  testing::OmpThreads one_thread(1);
  std::vector<float> g;
  rig.model->set_params(p);
  rig.loss_and_grads(g);
  std::vector<TensorFd> out;
  unsigned seed = 100;
  for (const ParamEntry& e : rig.model->table().entries()) {
    TensorFd r;
    r.name = e.name;
    const size_t n = size_t(e.numel());
    std::mt19937 rng(seed++);
    std::vector<float> dir(n);
    for (auto& d : dir) d = (rng() & 1) ? 1.f : -1.f;
    double an = 0;
    for (size_t i = 0; i < n; ++i) an += double(g[e.offset + i]) * dir[i];
    auto central = [&](double h) {
      std::vector<float> q = p;
      for (size_t i = 0; i < n; ++i) q[e.offset + i] = p[e.offset + i] + float(h) * dir[i];
      double lp = rig.loss_at(q);
      for (size_t i = 0; i < n; ++i) q[e.offset + i] = p[e.offset + i] - float(h) * dir[i];
      double lm = rig.loss_at(q);
      return (lp - lm) / (2 * h);
    };
    double d1 = central(h_dir), d2 = central(h_dir / 2);
    double num = (4 * d2 - d1) / 3;
    r.dir_analytic = an;
    r.dir_numeric = num;
    r.dir_excess = std::fabs(an - num) - (1e-4 + 2e-3 * std::max(std::fabs(an), std::fabs(num)));
    std::vector<float> x(p.begin() + e.offset, p.begin() + e.offset + n);
    std::vector<float> ga(g.begin() + e.offset, g.begin() + e.offset + n);
    std::vector<float> full = p;
    auto loss = [&]() {
      std::copy(x.begin(), x.end(), full.begin() + e.offset);
      return rig.loss_at(full);
    };
    r.elem = fd_check(loss, x, ga, h_elem, 5e-5, 1e-2, elems_per_tensor);
    out.push_back(r);
  }
  rig.model->set_params(p);
  return out;
}

// Asserts every row passed and prints the worst per tensor.
inline void expect_all_tensors_ok(const std::vector<TensorFd>& rows, const std::string& what) {
  for (const TensorFd& r : rows) {
    EXPECT_LE(r.dir_excess, 0.0) << what << " " << r.name << ": directional derivative analytic "
                                 << r.dir_analytic << " numeric " << r.dir_numeric;
    EXPECT_FD_OK(r.elem, what + " " + r.name);
    std::printf("  %-44s dir %+.5e vs %+.5e  elem worst excess %+.2e (a %+.3e n %+.3e)\n",
                r.name.c_str(), r.dir_analytic, r.dir_numeric, r.elem.worst_excess,
                r.elem.worst_analytic, r.elem.worst_numeric);
  }
}

}  // namespace statex::testing
