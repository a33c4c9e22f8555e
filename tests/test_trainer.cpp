// The training loop end to end on tiny configs: completion and the results file, determinism,
// exact resume (also across a StateX expansion), failure on a non-finite loss, the StateX event
// and the three arms (statex / control / scratch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/io/results_file.h"
#include "sim/model/state_size.h"
#include "sim/statex/statex.h"
#include "sim/train/train_step.h"
#include "sim/train/trainer.h"
#include "tests/support/model_harness.h"

using namespace statex;
using namespace statex::testing;

namespace {

// GLA, L = 2, D = 16, H = 2, V = 37; MQAR T = 16, K = 2; batch 4; 20 steps, eval every 10.
ExperimentConfig tiny_experiment(const std::string& model = "gla") {
  ExperimentConfig c;
  c.model = model == "gla"              ? tiny_gla(true)
            : model == "gated_deltanet" ? tiny_gated_deltanet(true)
                                        : tiny_mamba2(1, 4, 8);
  c.model.d_model = 16;
  c.model.gate_low_rank = 4;
  c.mqar_train = "16:2:200";
  c.mqar_test = "16:2:24";
  c.train.steps = 20;
  c.train.batch_size = 4;
  c.train.lr = 3e-3f;
  c.train.warmup_steps = 3;
  c.train.eval_every = 10;
  c.train.seed = 5;
  c.statex.warmup_steps = 2;
  c.train.threads = 1;  // tiny shapes: OpenMP fork/join only costs time on a loaded box
  finalize(c);
  return c;
}

TrainerOptions options(const TempDir& d, const std::string& out = "run.h5") {
  TrainerOptions o;
  o.out_path = d.path(out);
  o.quiet = true;
  return o;
}

int run(const ExperimentConfig& c, const TrainerOptions& o) {
  Trainer t(c, o);
  return t.run();
}

// Curves compare on everything but throughput (wall-clock).
void expect_same_curve(const RunRecord& a, const RunRecord& b, const std::string& what) {
  ASSERT_EQ(a.curve.size(), b.curve.size()) << what;
  for (size_t i = 0; i < a.curve.size(); ++i) {
    const CurvePoint &x = a.curve[i], &y = b.curve[i];
    EXPECT_EQ(x.step, y.step) << what << " point " << i;
    EXPECT_EQ(std::memcmp(&x.loss, &y.loss, 4), 0)
        << what << " step " << x.step << ": loss " << x.loss << " vs " << y.loss;
    EXPECT_EQ(x.lr, y.lr) << what << " step " << x.step;
    EXPECT_EQ(x.grad_norm, y.grad_norm) << what << " step " << x.step;
  }
  ASSERT_EQ(a.evals.size(), b.evals.size()) << what;
  for (size_t i = 0; i < a.evals.size(); ++i) {
    EXPECT_EQ(a.evals[i].step, b.evals[i].step) << what;
    EXPECT_EQ(a.evals[i].accuracy, b.evals[i].accuracy) << what << " eval at " << a.evals[i].step;
    EXPECT_EQ(a.evals[i].loss, b.evals[i].loss) << what << " eval at " << a.evals[i].step;
  }
}

// train_step against the same step spelled out: clipping scales the gradients to the clip norm
// exactly when the norm exceeds it; a non-finite loss leaves the parameters untouched.
TEST(TrainStep, MatchesTheStepSpelledOutWithAndWithoutClipping) {
  const ModelConfig cfg = tiny_gla(true);
  const MqarBatch b = random_batch(2, 9, 37, 3);
  TrainConfig tc;
  for (double clip : {0.0, 1e-3}) {
    SCOPED_TRACE(clip);
    ModelRig a(cfg, b, 4), manual(cfg, b, 4);
    AdamW adam_a(*a.be, a.model->table(), tc), adam_m(*manual.be, manual.model->table(), tc);
    const StepResult r = train_step(*a.model, adam_a, a.batch, 2e-3f, clip);
    manual.model->zero_grads();
    const float loss = manual.model->forward(manual.batch);
    manual.model->backward(manual.batch);
    const double norm = std::sqrt(manual.be->sum_squares(manual.model->grads(),
                                                        manual.model->n_params()));
    const float scale = clip > 0 ? float(clip / norm) : 1.0f;  // the norm is far above 1e-3
    adam_m.step(manual.model->params(), manual.model->grads(), 2e-3f, scale);
    EXPECT_TRUE(r.updated);
    EXPECT_EQ(r.loss, loss);
    EXPECT_EQ(r.grad_norm, norm);
    EXPECT_GT(norm, 1e-2);
    EXPECT_EQ(a.model->get_params(), manual.model->get_params());
  }
  ModelRig bad(cfg, b, 4);
  std::vector<float> p = bad.model->get_params();
  std::fill(p.begin(), p.end(), std::numeric_limits<float>::quiet_NaN());
  bad.model->set_params(p);
  AdamW adam(*bad.be, bad.model->table(), tc);
  const StepResult r = train_step(*bad.model, adam, bad.batch, 2e-3f, 1.0);
  EXPECT_FALSE(r.updated);
  EXPECT_FALSE(std::isfinite(r.loss));
  EXPECT_TRUE(adam.state().tensor_steps == std::vector<int64_t>(adam.table().entries().size(), 0));
}

TEST(Trainer, TinyRunCompletes) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  TrainerOptions o = options(d);
  o.checkpoint_out = d.path("ck.h5");
  ASSERT_EQ(run(c, o), kExitOk);
  RunRecord r = read_results(o.out_path);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.curve.size(), 20u);
  EXPECT_EQ(r.steps_done, 20);
  EXPECT_EQ(r.curve.front().step, 1);
  EXPECT_EQ(r.curve.back().step, 20);
  for (auto& p : r.curve) EXPECT_TRUE(std::isfinite(p.loss) && p.lr >= 0) << p.step;
  EXPECT_EQ(r.curve.back().lr, 0.f);  // cosine down to min_lr_ratio = 0
  EXPECT_FLOAT_EQ(r.curve[0].lr, c.train.lr / 3);  // warm-up 1 of 3
  ASSERT_EQ(r.evals.size(), 3u);  // step 0, 10, 20
  EXPECT_EQ(r.evals[0].step, 0);
  EXPECT_EQ(r.evals[2].step, 20);
  EXPECT_EQ(r.state.total_state_scalars(), compute_state_size(c.model).total_state_scalars());
  EXPECT_EQ(r.state.layer_zoology_state_scalars,
            compute_state_size(c.model).layer_zoology_state_scalars);
  EXPECT_EQ(r.tokens_seen, 20.0 * 4 * 16);
  EXPECT_FALSE(r.expansion.happened);
  Checkpoint ck = load_checkpoint(o.checkpoint_out);
  EXPECT_EQ(ck.step, 20);
  EXPECT_TRUE(ck.has_optimizer);
  EXPECT_EQ(list_dir(d.dir()), (std::vector<std::string>{"ck.h5", "run.h5"}));
}

TEST(Trainer, Mamba2TinyRunCompletes) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment("mamba2");
  TrainerOptions o = options(d);
  ASSERT_EQ(run(c, o), kExitOk);
  RunRecord r = read_results(o.out_path);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.curve.size(), 20u);
  EXPECT_EQ(r.model, "mamba2");
}

TEST(Trainer, IdenticalRunsGiveIdenticalCurves) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  ASSERT_EQ(run(c, options(d, "a.h5")), kExitOk);
  ASSERT_EQ(run(c, options(d, "b.h5")), kExitOk);
  RunRecord a = read_results(d.path("a.h5")), b = read_results(d.path("b.h5"));
  expect_same_curve(a, b, "rerun");
  // And a different seed does change it (the comparison can fail).
  c.train.seed = 6;
  ASSERT_EQ(run(c, options(d, "c.h5")), kExitOk);
  RunRecord e = read_results(d.path("c.h5"));
  EXPECT_NE(a.curve[0].loss, e.curve[0].loss);
}

// An interrupted run: the trainer has no "stop after N steps" option, so the first half uses
// the early stop of train.target_accuracy (any accuracy > 0 at the step-10 eval stops it), which
// writes the checkpoint at step 10 with the full 20-step schedule. Asserted below.
RunRecord run_interrupted_then_resume(ExperimentConfig c, const TempDir& d,
                                      const std::string& tag) {
  TrainerOptions o = options(d, tag + ".h5");
  o.checkpoint_out = d.path(tag + "_ck.h5");
  ExperimentConfig first = c;
  first.train.target_accuracy = 1e-6f;
  EXPECT_EQ(run(first, o), kExitOk);
  RunRecord half = read_results(o.out_path);
  EXPECT_EQ(half.steps_done, 10) << "the first half did not stop at step 10 (eval accuracy "
                                 << (half.evals.empty() ? -1.f : half.evals.back().accuracy)
                                 << "); this test needs a stop mechanism";
  EXPECT_EQ(load_checkpoint(o.checkpoint_out).step, 10);
  TrainerOptions r = o;
  r.resume_path = o.checkpoint_out;
  r.checkpoint_out = d.path(tag + "_ck2.h5");
  EXPECT_EQ(run(c, r), kExitOk);
  return read_results(o.out_path);
}

// `c` run uninterrupted (full.h5) and interrupted at step 10 then resumed; the resumed run must
// complete. Call through ASSERT_NO_FATAL_FAILURE.
void run_full_and_resumed(const ExperimentConfig& c, const TempDir& d, RunRecord& full,
                          RunRecord& resumed) {
  ASSERT_EQ(run(c, options(d, "full.h5")), kExitOk);
  full = read_results(d.path("full.h5"));
  resumed = run_interrupted_then_resume(c, d, "part");
  EXPECT_EQ(resumed.status, "completed");
}

TEST(Trainer, ResumeReproducesUninterruptedCurve) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  RunRecord full, resumed;
  ASSERT_NO_FATAL_FAILURE(run_full_and_resumed(c, d, full, resumed));
  EXPECT_EQ(resumed.steps_done, 20);
  expect_same_curve(full, resumed, "resume at 10");
}

TEST(Trainer, AttentionResumeReproducesUninterruptedCurve) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  c.model.model = "attention";  // D = 16, 2 heads of 8, short conv and RoPE
  c.model.rope = true;
  c.statex = StatexConfig{};  // StateX options are refused for attention
  finalize(c);
  RunRecord full, resumed;
  ASSERT_NO_FATAL_FAILURE(run_full_and_resumed(c, d, full, resumed));
  EXPECT_EQ(resumed.steps_done, 20);
  expect_same_curve(full, resumed, "attention resume at 10");
  // State = KV cache at the test length T = 16: 2 T D per layer, read back from the results.
  EXPECT_EQ(resumed.state.kv_cache_len, 16);
  EXPECT_EQ(resumed.state.total_state_scalars(), 2 * (2 * 16 * 16));
}

// The validation split (mqar.valid): evaluated at every test eval, written to /valid, and it
// changes nothing else: the curve and the test evals are bit-identical to the run without it.
TEST(Trainer, ValidationWrittenBesideTestAndChangesNothingElse) {
  TempDir d("statex_trainer");
  ExperimentConfig plain = tiny_experiment();
  ExperimentConfig c = plain;
  c.mqar_valid = "16:2:24";
  finalize(c);
  ASSERT_EQ(run(plain, options(d, "plain.h5")), kExitOk);
  ASSERT_EQ(run(c, options(d, "valid.h5")), kExitOk);
  RunRecord a = read_results(d.path("plain.h5")), r = read_results(d.path("valid.h5"));
  expect_same_curve(a, r, "with a validation split");
  EXPECT_FALSE(a.has_valid);
  EXPECT_TRUE(a.valid_evals.empty());
  ASSERT_TRUE(r.has_valid);
  EXPECT_EQ(r.valid_segments, std::vector<std::string>{"16:2:24"});
  EXPECT_EQ(r.valid_data_seed, c.mqar.train_seed);
  ASSERT_EQ(r.valid_evals.size(), r.evals.size());
  bool differs = false;
  for (size_t i = 0; i < r.evals.size(); ++i) {
    EXPECT_EQ(r.valid_evals[i].step, r.evals[i].step);
    EXPECT_TRUE(std::isfinite(r.valid_evals[i].loss));
    ASSERT_EQ(r.valid_evals[i].segment_accuracy.size(), 1u);
    EXPECT_EQ(r.valid_evals[i].segment_accuracy[0], r.valid_evals[i].accuracy);
    differs |= r.valid_evals[i].loss != r.evals[i].loss;
  }
  EXPECT_TRUE(differs) << "validation and test losses equal at every eval: the same data?";
  // An identical set would give identical numbers: the split is its own data (seed space).
  ExperimentConfig same = plain;
  same.mqar_valid = plain.mqar_test;
  finalize(same);
  ASSERT_EQ(run(same, options(d, "same.h5")), kExitOk);
  RunRecord s = read_results(d.path("same.h5"));
  ASSERT_EQ(s.valid_evals.size(), s.evals.size());
  int equal_losses = 0;
  for (size_t i = 0; i < s.evals.size(); ++i) equal_losses += s.valid_evals[i].loss == s.evals[i].loss;
  EXPECT_EQ(equal_losses, 0) << "validation = mqar.test segments but the same examples";
}

// train.target_accuracy is judged on the validation split when there is one: a target that the
// test accuracy reaches before the end but the validation accuracy never does lets the run go on
// (and the other way round).
TEST(Trainer, TargetAccuracyJudgedOnValidation) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  c.mqar_valid = "16:2:24";
  c.train.steps = 60;
  finalize(c);
  ASSERT_EQ(run(c, options(d, "free.h5")), kExitOk);
  RunRecord free = read_results(d.path("free.h5"));
  ASSERT_EQ(free.evals.size(), 7u);  // steps 0, 10, ..., 60
  // The best accuracies before the last eval (a hit at the last eval stops nothing).
  float test_max = 0, valid_max = 0;
  for (size_t i = 1; i + 1 < free.evals.size(); ++i) {
    test_max = std::max(test_max, free.evals[i].accuracy);
    valid_max = std::max(valid_max, free.valid_evals[i].accuracy);
  }
  ASSERT_NE(test_max, valid_max) << "the two splits scored alike; pick another seed";
  // A target only one split reaches before the end: a rule on the test set would stop early
  // exactly when a rule on the validation split does not, and the other way round.
  ExperimentConfig t = c;
  t.train.target_accuracy = std::max(test_max, valid_max);
  ASSERT_EQ(run(t, options(d, "t.h5")), kExitOk);
  RunRecord r = read_results(d.path("t.h5"));
  if (test_max > valid_max) {
    EXPECT_EQ(r.steps_done, 60) << "stopped on the test accuracy";
  } else {
    EXPECT_LT(r.steps_done, 60) << "did not stop on the validation accuracy";
    EXPECT_GE(r.valid_evals.back().accuracy, valid_max);
  }
}

TEST(Trainer, ResumeKeepsValidation) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  c.mqar_valid = "16:2:24";
  finalize(c);
  RunRecord full, resumed;
  ASSERT_NO_FATAL_FAILURE(run_full_and_resumed(c, d, full, resumed));
  expect_same_curve(full, resumed, "resume with a validation split");
  ASSERT_TRUE(resumed.has_valid);
  ASSERT_EQ(resumed.valid_evals.size(), full.valid_evals.size());
  ASSERT_EQ(resumed.valid_evals.size(), resumed.evals.size());
  for (size_t i = 0; i < full.valid_evals.size(); ++i) {
    EXPECT_EQ(resumed.valid_evals[i].step, full.valid_evals[i].step);
    EXPECT_EQ(resumed.valid_evals[i].accuracy, full.valid_evals[i].accuracy);
    EXPECT_EQ(resumed.valid_evals[i].loss, full.valid_evals[i].loss);
    EXPECT_EQ(resumed.valid_evals[i].segment_accuracy, full.valid_evals[i].segment_accuracy);
  }
}

void check_resume_after_expansion(const std::string& model) {
  SCOPED_TRACE(model);
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment(model);
  c.statex.step = 5;
  c.statex.arm = "statex";
  c.statex.mode = "inherit";  // keeps accuracy > 0 at step 10, which the early stop needs
  RunRecord full, resumed;
  ASSERT_NO_FATAL_FAILURE(run_full_and_resumed(c, d, full, resumed));
  ASSERT_TRUE(full.expansion.happened);
  expect_same_curve(full, resumed, "resume after StateX");
  EXPECT_TRUE(resumed.expansion.happened);
  EXPECT_EQ(resumed.expansion.step, 5);
  EXPECT_EQ(resumed.expansion.state_scalars_after, full.expansion.state_scalars_after);
  EXPECT_EQ(resumed.state.total_state_scalars(), full.state.total_state_scalars());
}

TEST(Trainer, ResumeAfterStatexExpansionReproducesCurve) { check_resume_after_expansion("gla"); }

TEST(Trainer, GatedDeltaNetResumeAfterStatexExpansionReproducesCurve) {
  check_resume_after_expansion("gated_deltanet");
}

// The control arm restarts the schedule at statex.step without expanding; a resume after that
// point must continue the unexpanded model with the restarted schedule.
TEST(Trainer, ResumeAfterControlRestartReproducesCurve) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  c.statex.step = 5;
  c.statex.arm = "control";
  RunRecord full, resumed;
  ASSERT_NO_FATAL_FAILURE(run_full_and_resumed(c, d, full, resumed));
  ASSERT_TRUE(full.expansion.happened);
  expect_same_curve(full, resumed, "resume after the control restart");
  EXPECT_EQ(resumed.state.total_state_scalars(), full.state.total_state_scalars());
}

TEST(Trainer, HugeLearningRateFailsWithReason) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  c.train.lr = 1e30f;
  c.train.warmup_steps = 0;
  c.train.grad_clip = 0;
  TrainerOptions o = options(d);
  EXPECT_EQ(run(c, o), kExitFailed);
  RunRecord r = read_results(o.out_path);
  EXPECT_EQ(r.status, "failed");
  EXPECT_CONTAINS(r.failure_reason, "non-finite");
  EXPECT_LT(r.curve.size(), 20u);
}

TEST(Trainer, StatexEventRecorded) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  c.model.n_layers = 4;  // GLA H = 2 -> 1 on layers {0, 2}: state x2 there, x1.5 in total
  c.statex.step = 10;
  c.statex.count = 2;
  c.statex.arm = "statex";
  TrainerOptions o = options(d);
  ASSERT_EQ(run(c, o), kExitOk);
  RunRecord r = read_results(o.out_path);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.curve.size(), 20u);
  const ExpansionEvent& e = r.expansion;
  ASSERT_TRUE(e.happened);
  EXPECT_EQ(e.step, 10);
  EXPECT_EQ(e.mode, "reinit");
  EXPECT_EQ(e.layers, (std::vector<int>{0, 2}));
  const int64_t per_layer = 8 * 16 / 2;  // Dk * Dv / H
  EXPECT_EQ(e.state_scalars_before, 4 * per_layer);
  EXPECT_EQ(e.state_scalars_after, 2 * per_layer + 2 * 2 * per_layer);
  EXPECT_EQ(r.state.total_state_scalars(), e.state_scalars_after);
  EXPECT_EQ(r.state.layer_state_scalars[0], 2 * per_layer);
  for (float a : {e.accuracy_before, e.accuracy_after, e.accuracy_end}) {
    EXPECT_GE(a, 0.f);
    EXPECT_LE(a, 1.f);
  }
  EXPECT_EQ(e.accuracy_end, r.evals.back().accuracy);
  // The schedule restarts at the expansion with its own warm-up (statex.warmup_steps = 2).
  EXPECT_FLOAT_EQ(r.curve[10].lr, c.train.lr * 0.5f);  // step 11: 1 of 2 warm-up steps
  EXPECT_FLOAT_EQ(r.curve[11].lr, c.train.lr);         // step 12: peak
}

TEST(Trainer, ThreeArmsEqualStepsScratchStartsExpanded) {
  TempDir d("statex_trainer");
  ExperimentConfig base = tiny_experiment("mamba2");
  base.statex.step = 8;
  RunRecord rec[3];
  const char* arms[3] = {"statex", "control", "scratch"};
  for (int i = 0; i < 3; ++i) {
    ExperimentConfig c = base;
    c.statex.arm = arms[i];
    TrainerOptions o = options(d, std::string(arms[i]) + ".h5");
    ASSERT_EQ(run(c, o), kExitOk) << arms[i];
    rec[i] = read_results(o.out_path);
    EXPECT_EQ(rec[i].arm, arms[i]);
    EXPECT_EQ(rec[i].status, "completed") << arms[i];
    EXPECT_EQ(rec[i].curve.size(), 20u) << arms[i];
    EXPECT_EQ(rec[i].steps_done, 20) << arms[i];
  }
  const StateSize before = compute_state_size(base.model);
  ModelConfig grown =
      expanded_config(base.model, base.statex, select_layers(base.statex, base.model.n_layers));
  const int64_t expanded = compute_state_size(grown).total_state_scalars();
  ASSERT_GT(expanded, before.total_state_scalars());
  // StateX arm: expands at step 8.
  EXPECT_TRUE(rec[0].expansion.happened);
  EXPECT_EQ(rec[0].expansion.state_scalars_after, expanded);
  EXPECT_EQ(rec[0].state.total_state_scalars(), expanded);
  // Control: the same restart at step 8, no growth.
  EXPECT_TRUE(rec[1].expansion.happened);
  EXPECT_EQ(rec[1].expansion.step, 8);
  EXPECT_EQ(rec[1].expansion.state_scalars_after, before.total_state_scalars());
  EXPECT_EQ(rec[1].state.total_state_scalars(), before.total_state_scalars());
  // Scratch: the expanded architecture from step 0 (and so the same state and parameter count).
  EXPECT_FALSE(rec[2].expansion.happened);
  EXPECT_EQ(rec[2].state.total_state_scalars(), expanded);
  EXPECT_EQ(rec[2].n_params, rec[0].n_params);
  // The two arms that do not expand share their first 8 steps with the statex arm only when
  // the architecture matches: control does, scratch does not.
  for (int s = 0; s < 8; ++s) EXPECT_EQ(rec[0].curve[s].loss, rec[1].curve[s].loss) << s;
  EXPECT_NE(rec[0].curve[0].loss, rec[2].curve[0].loss);
}

TEST(Trainer, BadOutputPathFailsBeforeWriting) {
  TempDir d("statex_trainer");
  ExperimentConfig c = tiny_experiment();
  TrainerOptions o = options(d);
  o.out_path = d.path("missing_dir/run.h5");
  std::string msg = error_of<ConfigError>([&] { run(c, o); });
  EXPECT_CONTAINS(msg, "--out");
  EXPECT_CONTAINS(msg, "missing_dir");
  EXPECT_TRUE(list_dir(d.dir()).empty());
}

}  // namespace
