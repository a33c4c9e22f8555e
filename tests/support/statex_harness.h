#pragma once
// Shared helpers for the StateX tests (tests/test_statex*.cpp): statex configs, a model's
// parameters before and after expand_model, the "outside the expanded mixers is bit-identical"
// check, and the expanded-model check (whole-model FD gradients and a few AdamW steps).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "sim/model/param_layout.h"
#include "sim/statex/statex.h"
#include "sim/train/optimizer.h"
#include "tests/support/model_harness.h"
#include "tests/support/omp_threads.h"

namespace statex::testing {

inline StatexConfig sx_config(const std::string& mode, int count = 1, const std::string& select = "evenly") {
  StatexConfig s;
  s.mode = mode;
  s.count = count;
  s.select = select;
  return s;
}

inline std::vector<float> init_for(const ModelConfig& c, uint64_t seed) {
  std::vector<float> p;
  init_params(c, build_param_table(c), seed, p);
  perturb_params(p, unsigned(seed) + 1);  // every tensor distinct from its init
  return p;
}

inline const float* ptr(const std::vector<float>& p, const ParamTable& t, const std::string& name) {
  return p.data() + t.at(name).offset;
}

// Which tensors of the new table belong to a selected layer's mixer (or its pre-norm)?
inline bool in_selected_mixer(const ModelConfig& c, const std::string& name, const std::vector<int>& layers,
                       bool include_pre_norm) {
  ModelNames nm = model_names(c);
  for (int l : layers) {
    if (name.rfind(nm.layer(l) + nm.mixer, 0) == 0) return true;
    if (include_pre_norm && name == nm.layer(l) + nm.pre_norm) return true;
  }
  return false;
}

// ---- expand_model surgery ----

struct Surgery {
  ModelConfig cfg;
  ParamTable table;
  std::vector<float> params;
  Expansion x;
};

inline Surgery expand(const ModelConfig& c, const StatexConfig& s, uint64_t seed = 21) {
  Surgery r;
  r.cfg = c;
  r.table = build_param_table(c);
  r.params = init_for(c, seed);
  r.x = expand_model(c, r.table, r.params, s, seed + 100);
  return r;
}

// Every tensor outside the selected layers' mixers (and their pre-norm under GLA reinit) has
// the same name, shape and bits; the new table holds exactly the old names.
inline void expect_outside_bit_identical(const Surgery& r, bool pre_norm_changes) {
  const ParamTable& nt = r.x.table;
  ASSERT_EQ(nt.entries().size(), r.table.entries().size());
  int checked = 0;
  for (const ParamEntry& e : nt.entries()) {
    ASSERT_TRUE(r.table.contains(e.name)) << e.name;
    if (in_selected_mixer(r.cfg, e.name, r.x.layers, pre_norm_changes)) continue;
    const ParamEntry& o = r.table.at(e.name);
    ASSERT_EQ(e.shape, o.shape) << e.name;
    EXPECT_TRUE(bit_equal(ptr(r.x.params, nt, e.name), ptr(r.params, r.table, e.name),
                          size_t(e.numel())))
        << e.name << " changed although it is outside the expanded mixers";
    ++checked;
  }
  EXPECT_GT(checked, 5);
}

// Names of the tensors `fresh` marks (new or reshaped: AdamW moments restart at zero).
inline std::set<std::string> fresh_names(const Expansion& x) {
  std::set<std::string> s;
  for (size_t i = 0; i < x.fresh.size(); ++i)
    if (x.fresh[i]) s.insert(x.table.entries()[i].name);
  return s;
}

// ---- the expanded model is a correct, trainable model ----

// perturb: the FD check runs at the expanded parameters plus U(±0.05) noise (as the whole-model
// FD tests do), e.g. to take a fresh Gated DeltaNet mixer's tiny q/k (N(0, 0.02) init) out of
// the eps regime of their L2 norm, where the loss is too curved for central differences.
inline void check_expanded_model_body(const ModelConfig& c, const StatexConfig& s,
                                      const std::string& what, bool perturb = false) {
  Surgery r = expand(c, s, 31);
  MqarBatch b = random_batch(2, 15, c.vocab_size, 6);
  ModelRig rig(r.x.cfg, b, 4, 0, &r.x.params);
  std::vector<float> p = r.x.params;
  if (perturb) perturb_params(p, 8);
  liven_gates(r.x.table, p, 7);
  std::printf("%s expanded (%lld params):\n", what.c_str(), (long long)rig.model->n_params());
  expect_all_tensors_ok(whole_model_fd(rig, p, 4), what);

  // A few AdamW steps on the batch: finite loss and gradients, and the loss goes down.
  TrainConfig tc;
  tc.lr = 1e-2f;
  AdamW adam(*rig.be, rig.model->table(), tc);
  rig.model->set_params(r.x.params);
  double first = 0, last = 0;
  for (int step = 0; step < 6; ++step) {
    std::vector<float> g;
    last = rig.loss_and_grads(g);
    if (step == 0) first = last;
    ASSERT_TRUE(std::isfinite(last)) << what << " step " << step;
    for (float x : g) ASSERT_TRUE(std::isfinite(x)) << what << " step " << step;
    adam.step(rig.model->params(), rig.model->grads(), tc.lr, 1.0f);
  }
  EXPECT_LT(last, first) << what << ": loss did not decrease over 6 AdamW steps on one batch";
}

inline void check_expanded_model(const ModelConfig& c, const StatexConfig& s,
                                 const std::string& what, bool perturb = false) {
  OmpThreads one_thread(1);  // tiny shapes: OpenMP fork/join only costs time here
  check_expanded_model_body(c, s, what, perturb);
}

}  // namespace statex::testing
