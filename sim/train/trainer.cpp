// The training loop (trainer.h). Read top-down: run() -> setup() -> loop(); then the StateX
// event, checkpoints and results. The step itself is train_step() (train_step.h), the
// optimizer's state is AdamW's, the StateX decisions are the StatexPlan's.
#include "sim/train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>

#include "build_info.h"
#include "sim/core/backend.h"
#include "sim/core/options.h"
#include "sim/core/provenance.h"
#include "sim/io/checkpoint.h"
#include "sim/io/output_guard.h"
#include "sim/io/results_file.h"
#include "sim/model/model.h"
#include "sim/model/param_layout.h"
#include "sim/statex/statex.h"
#include "sim/task/metrics.h"
#include "sim/task/mqar.h"
#include "sim/task/token_dataset.h"
#include "sim/train/device_batch.h"
#include "sim/train/evaluate.h"
#include "sim/train/interrupt.h"
#include "sim/train/optimizer.h"
#include "sim/train/progress.h"
#include "sim/train/resume_check.h"
#include "sim/train/run_header.h"
#include "sim/train/schedule.h"
#include "sim/train/train_step.h"

namespace statex {

namespace {

using Clock = std::chrono::steady_clock;

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string join(const std::vector<int>& v) {
  std::ostringstream s;
  for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str();
}

// Seed offset of the parameters StateX initialises afresh (reinit), so they differ from step 0's.
constexpr uint64_t kStatexSeedOffset = 0x5ca1ab1eull;

// A random id for a new run (16 hex digits); it never influences the computation.
std::string new_run_uid() {
  std::random_device rd;
  const uint64_t x = (uint64_t(rd()) << 32) ^ uint64_t(rd()) ^
                     uint64_t(std::chrono::system_clock::now().time_since_epoch().count()) ^
                     (uint64_t(getpid()) << 17);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

// "option=digest" lines -> map.
std::map<std::string, std::string> digest_map(const std::string& text) {
  std::map<std::string, std::string> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

}  // namespace

struct Trainer::Impl {
  ExperimentConfig cfg;
  TrainerOptions opt;
  StatexPlan plan;
  RunRecord rec;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Dataset> train_set, test_set;  // generator or token file (data.*)
  std::unique_ptr<Dataset> valid_set;            // the validation split; null when none
  std::unique_ptr<Model> model;
  std::unique_ptr<AdamW> adam;
  std::unique_ptr<DeviceBatchBuffer> batch_buf;
  Schedule schedule;
  int64_t step = 0;  // optimizer updates done
  int max_tokens = 0;
  Clock::time_point t0;
  double wall_before = 0;  // wall time of earlier segments (resume)
  bool prepared = false;
  std::string data_digests;   // "data.train=<digest>" per token file read (token_file_digest)
  std::string run_uid;        // new, or the resumed run's
  // --resume: the earlier results of the same run at --out (checked in check_resume_identity)
  std::unique_ptr<RunRecord> earlier;

  Impl(ExperimentConfig c, TrainerOptions o) : cfg(std::move(c)), opt(std::move(o)) {}

  void setup();
  int loop();
  void check_resume_identity(const Checkpoint& ck);

  void build_model(const ModelConfig& mc);
  void fill_record_header();
  void restore(const Checkpoint& ck);
  void do_eval(Progress& progress);
  void statex_event(Progress& progress);
  void save_checkpoint_file(const std::string& path);
  void write_results();
  int fail(const std::string& why);
  int interrupted(int sig);
  // Wall time of the whole run so far, earlier segments (before a resume) included.
  double wall_time() const {
    return wall_before + std::chrono::duration<double>(Clock::now() - t0).count();
  }
};

Trainer::Trainer(ExperimentConfig cfg, TrainerOptions opt)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(opt))) {}
Trainer::~Trainer() = default;
const RunRecord& Trainer::record() const { return impl_->rec; }

void Trainer::prepare() {
  if (impl_->prepared) return;
  impl_->t0 = Clock::now();
  install_interrupt_handlers();
  impl_->setup();  // config / file errors throw before anything is written
  impl_->prepared = true;
  if (!impl_->opt.quiet) print_run_header(impl_->rec, impl_->opt, impl_->step, stderr);
}

int Trainer::run() {
  prepare();
  try {
    return impl_->loop();
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    return impl_->fail(e.what());
  }
}

// Options, data, backend, model and optimizer: fresh, from --init-from weights, or from a
// --resume checkpoint.
void Trainer::Impl::setup() {
  if (cfg.train.threads > 0) omp_set_num_threads(cfg.train.threads);
  plan = plan_statex(cfg.statex, cfg.model, cfg.train.steps);
  if (!opt.out_path.empty()) check_writable(opt.out_path, "--out");
  if (!opt.checkpoint_out.empty()) check_writable(opt.checkpoint_out, "--checkpoint-out");
  be = make_backend(cfg.train.device);

  train_set = make_dataset(cfg.mqar, Split::train);
  test_set = make_dataset(cfg.mqar, Split::test);
  if (cfg.mqar.has_valid()) valid_set = make_dataset(cfg.mqar, Split::valid);
  for (const auto* set : {train_set.get(), test_set.get(), valid_set.get()})
    if (const auto* file = dynamic_cast<const TokenFileDataset*>(set))
      data_digests += file->option() + "=" + token_file_digest(file->file()) + "\n";
  max_tokens = cfg.train.batch_size *
               std::max({train_set->max_seq_len(), test_set->max_seq_len(),
                         valid_set ? valid_set->max_seq_len() : 0});
  batch_buf = std::make_unique<DeviceBatchBuffer>(*be);
  schedule = Schedule{cfg.train.lr, cfg.train.min_lr_ratio, 0, cfg.train.steps,
                      cfg.train.warmup_steps};

  run_uid = new_run_uid();
  if (!opt.resume_path.empty()) {
    Checkpoint ck = load_checkpoint(opt.resume_path);
    check_resume_identity(ck);
    // A checkpoint written after an expanding event holds the expanded model.
    const bool after_event = ck.trainer && ck.trainer->statex_event_step >= 0;
    check_compatible(ck, after_event && plan.event_expands ? plan.after_event : plan.initial,
                     opt.resume_path);
    build_model(ck.model);
    restore(ck);
  } else if (!opt.init_from.empty()) {
    Checkpoint ck = load_checkpoint(opt.init_from);
    // A `statex expand` output carries per-layer shapes the options cannot express; every
    // other model option must still match.
    ModelConfig want = plan.initial;
    if (ck.expansion) want.layers = ck.model.layers;
    check_compatible(ck, want, opt.init_from);
    build_model(ck.model);
    model->set_params(ck.params);
  } else {
    build_model(plan.initial);
    std::vector<float> p;
    init_params(model->config(), model->table(), cfg.train.seed, p);
    model->set_params(p);
  }
  fill_record_header();
}

// --resume: the checkpoint must hold a run (not weights only), and the results file at --out must
// be that run's: the same run_uid (for files written before run ids, the same options). Reads
// the earlier results once, for restore().
void Trainer::Impl::check_resume_identity(const Checkpoint& ck) {
  const std::string& ckp = opt.resume_path;
  if (!ck.trainer) {
    if (ck.expansion)
      throw ConfigError("--resume: '" + ckp + "' was written by statex expand (from '" +
                        ck.expansion->source + "'): it holds the expanded weights only, no run " +
                        "to continue; train it with --init-from " + ckp + " instead (fresh " +
                        "optimizer and schedule)");
    throw ConfigError("--resume: checkpoint '" + ckp + "' has no trainer state (weights only); " +
                      "start a run from its weights with --init-from " + ckp + " instead");
  }
  const TrainerState& ts = *ck.trainer;
  if (!ts.run_uid.empty()) run_uid = ts.run_uid;
  if (opt.out_path.empty() || access(opt.out_path.c_str(), F_OK) != 0) {
    if (!opt.out_path.empty() && ck.step > 0)
      std::fprintf(stderr, "statex train: note: --out '%s' does not exist: its curve starts at "
                   "step %lld%s\n", opt.out_path.c_str(), static_cast<long long>(ck.step),
                   ts.results_file.empty()
                       ? ""
                       : (" (the run's earlier results are in '" + ts.results_file + "')").c_str());
    return;
  }
  RunRecord old;
  try {
    old = read_results(opt.out_path);
  } catch (const std::exception& e) {  // cmd_train lets an unreadable --out through only with --overwrite
    std::fprintf(stderr, "warning: could not read earlier results '%s' (%s); curve restarts\n",
                 opt.out_path.c_str(), e.what());
    return;
  }
  std::string differs;
  if (!old.run_uid.empty() && !ts.run_uid.empty()) {
    if (old.run_uid != ts.run_uid)
      differs = "run_uid " + old.run_uid + " there, " + ts.run_uid + " in the checkpoint";
  } else {  // written before run ids: the options that define the run must match
    std::map<std::string, std::string> a, b;
    try {
      a = config_values_from_ini(old.config_ini);
      b = config_values_from_ini(ts.config_ini);
    } catch (const std::exception& e) {
      differs = std::string("its options cannot be compared: ") + e.what();
    }
    const auto& may = options_resume_may_change();
    for (const auto& [name, value] : b) {
      if (std::find(may.begin(), may.end(), name) != may.end()) continue;
      auto it = a.find(name);
      if (it != a.end() && it->second != value) {
        differs = name + " " + it->second + " there, " + value + " in the checkpoint";
        break;
      }
    }
  }
  if (!differs.empty())
    throw ConfigError(
        "--resume: --out '" + opt.out_path + "' holds the results of another run than checkpoint '" +
        ckp + "' (" + differs + ")" +
        (ts.results_file.empty() ? "" : "; that run writes its results to '" + ts.results_file + "'") +
        ". Resuming would merge two runs' curves: give --out the results file of the " +
        "checkpoint's run, or a path that does not exist yet (its curve then starts at step " +
        std::to_string(ck.step) + ")");
  earlier = std::make_unique<RunRecord>(std::move(old));
}

// Train until train.steps (or the target accuracy), evaluating every train.eval_every steps.
int Trainer::Impl::loop() {
  const TrainConfig& tc = cfg.train;
  Progress progress(tc.steps, opt.quiet, opt.progress_every_s);
  if (step == 0) do_eval(progress);
  write_results();
  auto last_tick = Clock::now();
  while (step < tc.steps) {
    if (step == plan.event_step && !rec.expansion.happened) statex_event(progress);
    const MqarBatch hb = make_train_batch(*train_set, step, tc.batch_size);
    const DeviceBatch db = batch_buf->upload(hb);
    const float lr = float(schedule.lr(step + 1));
    const StepResult r = train_step(*model, *adam, db, lr, tc.grad_clip);
    if (!std::isfinite(r.loss))
      return fail("non-finite loss (" + format_float(r.loss) + ") at step " +
                  std::to_string(step + 1));
    if (!r.updated) return fail("non-finite gradient norm at step " + std::to_string(step + 1));
    ++step;

    const auto now = Clock::now();
    const double dt = std::max(std::chrono::duration<double>(now - last_tick).count(), 1e-9);
    last_tick = now;
    const double tokens = double(hb.B) * hb.T;
    rec.tokens_seen += tokens;
    rec.curve.push_back(CurvePoint{step, r.loss, lr, float(r.grad_norm), float(tokens / dt)});
    progress.step(step, r.loss, lr, tokens / dt);

    const bool last = step == tc.steps;
    if (step % tc.eval_every == 0 || last) {
      do_eval(progress);
      rec.wall_time_s = wall_time();
      if (rec.expansion.happened) rec.expansion.accuracy_end = rec.evals.back().accuracy;
      write_results();
      // With a validation split the stop is decided on it, so the test set takes no part in
      // any decision of the run.
      const float watched = valid_set ? rec.valid_evals.back().accuracy
                                      : rec.evals.back().accuracy;
      const bool target_hit = tc.target_accuracy > 0 && watched >= tc.target_accuracy;
      if (target_hit && !last) {
        progress.note(std::string(valid_set ? "validation" : "test") + " accuracy target " +
                      format_float(tc.target_accuracy) + " reached at step " +
                      std::to_string(step) + "; stopping early");
        break;
      }
    }
    if (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0 && !opt.checkpoint_out.empty()) {
      // Results first: they then always hold the curve up to the checkpoint, which a --resume
      // from it keeps (every step once).
      rec.wall_time_s = wall_time();
      write_results();
      save_checkpoint_file(opt.checkpoint_out);
    }
    if (int sig = pending_interrupt()) return interrupted(sig);
  }
  if (rec.evals.empty() || rec.evals.back().step != step) do_eval(progress);
  rec.status = "completed";
  rec.wall_time_s = wall_time();
  if (rec.expansion.happened) rec.expansion.accuracy_end = rec.evals.back().accuracy;
  if (!opt.checkpoint_out.empty()) save_checkpoint_file(opt.checkpoint_out);
  write_results();
  progress.done(step, rec.evals.back().accuracy, rec.wall_time_s);
  return kExitOk;
}

// The StateX event (docs/design.md §3) at the plan's step: the statex arm expands the selected
// layers (AdamW carries the moments of the tensors it keeps); the control arm only restarts the
// schedule. Both record the event with the accuracy just before and right after.
void Trainer::Impl::statex_event(Progress& progress) {
  ExpansionEvent& ev = rec.expansion;
  ev.happened = true;
  ev.step = step;
  ev.mode = plan.event_expands ? cfg.statex.mode : "none";
  ev.layers = plan.layers;
  ev.state_scalars_before = model->state_size().total_state_scalars();
  ev.params_before = model->n_params();
  ev.accuracy_before = evaluate(*model, *test_set, cfg.train.batch_size, *batch_buf, step).accuracy;

  if (plan.event_expands) {
    const AdamWState old_moments = adam->state();
    const ParamTable old_table = model->table();
    Expansion x = expand_model(model->config(), old_table, model->get_params(), cfg.statex,
                               plan.layers, cfg.train.seed + kStatexSeedOffset);
    build_model(x.cfg);
    model->set_params(x.params);
    adam->carry_over(old_moments, old_table, x.fresh, cfg.statex.reset_optimizer);
    rec.state = model->state_size();
    rec.n_params = model->n_params();
  } else if (cfg.statex.reset_optimizer) {
    adam->reset();
  }
  // The schedule restarts with its own warm-up over the remaining steps.
  schedule.start = step;
  schedule.length = cfg.train.steps - step;
  schedule.warmup = cfg.statex.warmup_steps;
  ev.state_scalars_after = model->state_size().total_state_scalars();
  ev.params_after = model->n_params();
  ev.accuracy_after = evaluate(*model, *test_set, cfg.train.batch_size, *batch_buf, step).accuracy;
  progress.note("StateX (" + cfg.statex.arm + ") at step " + std::to_string(step) + ": layers " +
                join(ev.layers) + ", state " + std::to_string(ev.state_scalars_before) + " -> " +
                std::to_string(ev.state_scalars_after) + " scalars, acc " +
                format_float(ev.accuracy_before) + " -> " + format_float(ev.accuracy_after));
}

void Trainer::Impl::build_model(const ModelConfig& mc) {
  adam.reset();
  model.reset();
  model = std::make_unique<Model>(mc, *be, max_tokens, cfg.train.gla_chunk, cfg.train.ssd_chunk);
  adam = std::make_unique<AdamW>(*be, model->table(), cfg.train);
}

void Trainer::Impl::do_eval(Progress& progress) {
  EvalPoint e = evaluate(*model, *test_set, cfg.train.batch_size, *batch_buf, step);
  rec.evals.push_back(e);
  progress.eval(step, e);
  if (valid_set) {
    EvalPoint v = evaluate(*model, *valid_set, cfg.train.batch_size, *batch_buf, step);
    rec.valid_evals.push_back(v);
    progress.valid(step, v);
  }
}

// --resume: parameters, AdamW state, schedule and StateX event from the checkpoint; the curve
// of the interrupted run from its results file when it is there.
void Trainer::Impl::restore(const Checkpoint& ck) {
  if (!ck.trainer)
    throw ConfigError("--resume: checkpoint '" + opt.resume_path +
                      "' has no trainer state (was it written with --weights-only or by statex "
                      "expand? use --init-from instead)");
  const TrainerState& ts = *ck.trainer;
  model->set_params(ck.params);
  AdamWState moments = adam->state();
  if (ts.tensor_steps.size() != moments.tensor_steps.size())
    throw ConfigError("--resume: checkpoint optimizer state does not match the model");
  if (ck.has_optimizer) {
    moments.exp_avg = ck.exp_avg;
    moments.exp_avg_sq = ck.exp_avg_sq;
  }
  moments.tensor_steps = ts.tensor_steps;
  adam->load(moments);
  step = ck.step;
  schedule.start = ts.schedule_start;
  schedule.length = ts.schedule_length;
  schedule.warmup = ts.schedule_warmup;
  if (ts.statex_event_step >= 0) {
    rec.expansion.happened = true;
    rec.expansion.step = ts.statex_event_step;
  }
  wall_before = ts.wall_time_s;
  rec.tokens_seen = ts.tokens_seen;
  const std::vector<std::string> changes = resume_changes(ts.config_ini, cfg, opt.resume_path);
  // The token files must hold what the run was trained on (same path is not enough: a file
  // regenerated there with other content would silently change the run).
  const std::map<std::string, std::string> then = digest_map(ts.data_digests),
                                           now = digest_map(data_digests);
  for (const auto& [option, digest] : then) {
    auto it = now.find(option);
    if (it != now.end() && it->second == digest) continue;
    const std::string file = option == "data.train"  ? cfg.mqar.train_file
                             : option == "data.test" ? cfg.mqar.test_file
                                                     : cfg.mqar.valid_file;
    throw ConfigError("--resume: token file '" + file + "' (" + option + ") is not the file " +
                      "the run in checkpoint '" + opt.resume_path + "' was trained on: its " +
                      "content changed since (digest then " + digest + ", now " +
                      (it == now.end() ? std::string("none") : it->second) +
                      "). Put the original file back, or start a new run from the " +
                      "checkpoint's weights with --init-from " + opt.resume_path);
  }
  std::string note = "resumed at step " + std::to_string(step) + " from " + opt.resume_path;
  for (size_t i = 0; i < changes.size(); ++i) note += (i ? ", " : "; changed: ") + changes[i];
  std::fprintf(stderr, "statex train: %s\n", note.c_str());
  // Keep the curve of the interrupted run up to the checkpoint, when its results file is there
  // (check_resume_identity read it and made sure it is this run's).
  if (earlier) {
    const RunRecord& old = *earlier;
    for (auto& p : old.curve)
      if (p.step <= step) rec.curve.push_back(p);
    for (auto& e : old.evals)
      if (e.step <= step) rec.evals.push_back(e);
    for (auto& e : old.valid_evals)
      if (e.step <= step) rec.valid_evals.push_back(e);
    if (old.expansion.happened && old.expansion.step <= step) rec.expansion = old.expansion;
    rec.resume_log = old.resume_log;
  }
  rec.resume_log += (rec.resume_log.empty() ? "" : "\n") + note;
}

void Trainer::Impl::save_checkpoint_file(const std::string& path) {
  Checkpoint ck;
  ck.model = model->config();
  ck.step = step;
  ck.table = model->table();
  ck.params = model->get_params();
  AdamWState moments = adam->state();
  ck.has_optimizer = true;
  ck.exp_avg = std::move(moments.exp_avg);
  ck.exp_avg_sq = std::move(moments.exp_avg_sq);
  TrainerState ts;
  ts.config_ini = OptionRegistry(cfg).to_ini();
  ts.schedule_start = schedule.start;
  ts.schedule_length = schedule.length;
  ts.schedule_warmup = schedule.warmup;
  ts.tensor_steps = std::move(moments.tensor_steps);
  ts.statex_event_step = rec.expansion.happened ? rec.expansion.step : -1;
  ts.wall_time_s = wall_time();
  ts.tokens_seen = rec.tokens_seen;
  ts.run_uid = run_uid;
  ts.results_file = opt.out_path.empty() ? "" : resolve_path(opt.out_path);
  ts.data_digests = data_digests;
  ts.status = rec.status;
  ck.trainer = std::move(ts);
  save_checkpoint(path, ck);
}

void Trainer::Impl::fill_record_header() {
  OptionRegistry reg(cfg);
  rec.config = reg.values();
  rec.config_ini = reg.to_ini();
  rec.arm = cfg.statex.arm;
  rec.run_uid = run_uid;
  rec.data_digests = data_digests;
  rec.git_commit = STATEX_GIT_COMMIT;
  rec.compiler = STATEX_CXX_COMPILER;
  rec.cxx_flags = STATEX_CXX_FLAGS;
  rec.build_type = STATEX_BUILD_TYPE;
  rec.device = be->name();
#ifdef STATEX_WITH_CUDA
  rec.cuda_enabled = true;
#endif
  rec.hostname = host_name();
  rec.omp_threads = omp_get_max_threads();
  rec.provenance = provenance().fields();
  rec.param_seed = cfg.train.seed;
  rec.train_data_seed = cfg.mqar.train_seed;
  rec.test_data_seed = cfg.mqar.train_seed;  // same seed, disjoint "test" split stream
  rec.model = model->config().model;
  rec.n_params = model->n_params();
  rec.state = model->state_size(test_set->max_seq_len());
  rec.test_segments = test_set->segment_names();
  rec.has_valid = valid_set != nullptr;
  if (valid_set) rec.valid_segments = valid_set->segment_names();
  rec.valid_data_seed = cfg.mqar.train_seed;  // same seed, disjoint "valid" split stream
  rec.query_classes.clear();
  for (int c = 0; c < kNumQueryClasses; ++c) rec.query_classes.push_back(query_class_name(c));
  rec.gap_bucket_edges = default_gap_edges(test_set->max_seq_len());
}

void Trainer::Impl::write_results() {
  if (opt.out_path.empty()) return;
  rec.steps_done = step;
  statex::write_results(opt.out_path, rec);
}

// SIGTERM / SIGINT (interrupt.h): final checkpoint, results marked interrupted at this step.
int Trainer::Impl::interrupted(int sig) {
  rec.status = "interrupted";
  rec.failure_reason = std::string("interrupted by ") + signal_name(sig) + " at step " +
                       std::to_string(step) +
                       (opt.checkpoint_out.empty() ? " (no --checkpoint-out: cannot be resumed)"
                                                   : "; continue with --resume " + opt.checkpoint_out);
  rec.wall_time_s = wall_time();
  write_results();
  if (!opt.checkpoint_out.empty()) save_checkpoint_file(opt.checkpoint_out);
  std::fprintf(stderr, "statex train: %s\n", rec.failure_reason.c_str());
  return kExitInterrupted;
}

int Trainer::Impl::fail(const std::string& why) {
  rec.status = "failed";
  rec.failure_reason = why;
  rec.wall_time_s = wall_time();
  std::fprintf(stderr, "statex train: run failed: %s\n", why.c_str());
  write_results();
  return kExitFailed;
}

}  // namespace statex
