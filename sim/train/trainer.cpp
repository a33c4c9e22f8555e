#include "sim/train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "build_info.h"
#include "sim/core/backend.h"
#include "sim/core/options.h"
#include "sim/io/checkpoint.h"
#include "sim/io/results_file.h"
#include "sim/model/model.h"
#include "sim/model/param_layout.h"
#include "sim/statex/statex.h"
#include "sim/task/metrics.h"
#include "sim/task/mqar.h"
#include "sim/train/device_batch.h"
#include "sim/train/evaluate.h"
#include "sim/train/interrupt.h"
#include "sim/train/resume_check.h"
#include "sim/train/run_header.h"
#include "sim/train/optimizer.h"
#include "sim/train/progress.h"
#include "sim/train/schedule.h"

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

std::vector<int> parse_ints(const std::string& text) {
  std::vector<int> v;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(std::stoi(item));
  return v;
}

}  // namespace

struct Trainer::Impl {
  ExperimentConfig cfg;
  TrainerOptions opt;
  RunRecord rec;
  std::unique_ptr<Backend> be;
  std::unique_ptr<MqarDataset> train_set, test_set;
  std::unique_ptr<Model> model;
  std::unique_ptr<AdamW> adam;
  std::unique_ptr<DeviceBatchBuffer> batch_buf;
  Schedule schedule;
  int64_t step = 0;            // optimizer updates done
  int64_t expand_at = -1;      // step after which StateX / the control restart happens
  int max_tokens = 0;
  Clock::time_point t0;
  double wall_before = 0;      // wall time of earlier segments (resume)

  Impl(ExperimentConfig c, TrainerOptions o) : cfg(std::move(c)), opt(std::move(o)) {}

  // Wall time of the whole run so far, earlier segments (before a resume) included.
  double wall_time() const {
    return wall_before + std::chrono::duration<double>(Clock::now() - t0).count();
  }

  void setup();
  void build_model(const ModelConfig& mc);
  void fill_record_header();
  void restore(const Checkpoint& ck);
  void save_checkpoint_file(const std::string& path);
  void do_eval(Progress& progress);
  void expansion_event(Progress& progress);
  void write_results();
  int fail(const std::string& why);
  int interrupted(int sig);
  int loop();
};

void Trainer::Impl::setup() {
  if (cfg.train.threads > 0) omp_set_num_threads(cfg.train.threads);
  expand_at = expansion_step(cfg.statex, cfg.train.steps);
  validate(cfg.statex, cfg.model, cfg.train.steps);
  if (!opt.out_path.empty()) check_writable(opt.out_path, "--out");
  if (!opt.checkpoint_out.empty()) check_writable(opt.checkpoint_out, "--checkpoint-out");
  be = make_backend(cfg.train.device);

  const auto& mq = cfg.mqar;
  train_set = std::make_unique<MqarDataset>(mq.train, mq.vocab_size, mq.power_a,
                                            mq.random_non_queries, mq.train_seed, Split::train);
  test_set = std::make_unique<MqarDataset>(mq.test, mq.vocab_size, mq.power_a,
                                           mq.random_non_queries, mq.train_seed, Split::test);
  max_tokens = cfg.train.batch_size * std::max(train_set->max_seq_len(), test_set->max_seq_len());
  batch_buf = std::make_unique<DeviceBatchBuffer>(*be);

  schedule = Schedule{cfg.train.lr, cfg.train.min_lr_ratio, 0, cfg.train.steps,
                      cfg.train.warmup_steps};
  ModelConfig mc = cfg.model;
  // The from-scratch arm trains the expanded architecture from step 0.
  if (cfg.statex.arm == "scratch") {
    mc = expanded_config(cfg.model, cfg.statex, select_layers(cfg.statex, cfg.model.n_layers));
    expand_at = -1;
  }
  if (!opt.resume_path.empty()) {
    Checkpoint ck = load_checkpoint(opt.resume_path);
    // A checkpoint written after the expansion holds the expanded model (not for the control
    // arm, which restarts the schedule without expanding).
    ModelConfig want = mc;
    auto ex = ck.trainer_attrs.find("expanded");
    if (ex != ck.trainer_attrs.end() && ex->second == "1" && cfg.statex.arm != "control")
      want = expanded_config(cfg.model, cfg.statex, select_layers(cfg.statex, cfg.model.n_layers));
    check_compatible(ck, want, opt.resume_path);
    build_model(ck.model);
    restore(ck);
  } else {
    std::vector<float> p;
    if (!opt.init_from.empty()) {
      Checkpoint ck = load_checkpoint(opt.init_from);
      // A `statex expand` output carries per-layer shapes the options cannot express; every
      // other model option must still match.
      ModelConfig want = mc;
      if (ck.trainer_attrs.count("statex_layers")) want.layers = ck.model.layers;
      check_compatible(ck, want, opt.init_from);
      build_model(ck.model);
      p = ck.params;
    } else {
      build_model(mc);
      init_params(model->config(), model->table(), cfg.train.seed, p);
    }
    model->set_params(p);
  }
  fill_record_header();
}

void Trainer::Impl::build_model(const ModelConfig& mc) {
  adam.reset();
  model.reset();
  model = std::make_unique<Model>(mc, *be, max_tokens, cfg.train.gla_chunk, cfg.train.ssd_chunk);
  adam = std::make_unique<AdamW>(*be, model->table(), cfg.train);
}

void Trainer::Impl::fill_record_header() {
  OptionRegistry reg(cfg);
  rec.config = reg.values();
  rec.config_ini = reg.to_ini();
  rec.arm = cfg.statex.arm;
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
  rec.param_seed = cfg.train.seed;
  rec.train_data_seed = cfg.mqar.train_seed;
  rec.test_data_seed = cfg.mqar.train_seed;  // same seed, disjoint "test" split stream
  rec.model = model->config().model;
  rec.n_params = model->n_params();
  rec.state = model->state_size();
  rec.test_segments.clear();
  for (auto& s : cfg.mqar.test) rec.test_segments.push_back(format_segment(s));
  rec.gap_bucket_edges = default_gap_edges(test_set->max_seq_len());
}

void Trainer::Impl::restore(const Checkpoint& ck) {
  model->set_params(ck.params);
  if (ck.has_optimizer) {
    be->to_device(adam->exp_avg(), ck.exp_avg.data(), ck.exp_avg.size() * sizeof(float));
    be->to_device(adam->exp_avg_sq(), ck.exp_avg_sq.data(), ck.exp_avg_sq.size() * sizeof(float));
  }
  step = ck.step;
  auto get = [&](const std::string& k) -> std::string {
    auto it = ck.trainer_attrs.find(k);
    if (it == ck.trainer_attrs.end())
      throw ConfigError("--resume: checkpoint '" + opt.resume_path + "' lacks trainer attribute '" +
                        k + "' (was it written with --weights-only? use --init-from instead)");
    return it->second;
  };
  // Named errors for damaged values (not a bare "stoll").
  auto num = [&](const std::string& k) -> double {
    std::string v = get(k);
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x))
      throw ConfigError("--resume: checkpoint '" + opt.resume_path + "': trainer attribute '" + k +
                        "' is damaged ('" + v + "' is not a number)");
    return x;
  };
  schedule.start = int64_t(num("schedule_start"));
  schedule.length = int64_t(num("schedule_length"));
  schedule.warmup = int64_t(num("schedule_warmup"));
  std::vector<int> ts;
  try {
    ts = parse_ints(get("tensor_steps"));
  } catch (const std::logic_error&) {
    throw ConfigError("--resume: checkpoint '" + opt.resume_path +
                      "': trainer attribute 'tensor_steps' is damaged");
  }
  if (ts.size() != adam->tensor_steps().size())
    throw ConfigError("--resume: checkpoint optimizer state does not match the model");
  for (size_t i = 0; i < ts.size(); ++i) adam->tensor_steps()[i] = ts[i];
  if (get("expanded") == "1") {
    rec.expansion.happened = true;
    rec.expansion.step = int64_t(num("statex_step"));
  }
  wall_before = num("wall_time_s");
  if (ck.trainer_attrs.count("tokens_seen")) rec.tokens_seen = num("tokens_seen");
  std::vector<std::string> changes = resume_changes(get("config_ini"), cfg, opt.resume_path);
  std::string note = "resumed at step " + std::to_string(step) + " from " + opt.resume_path;
  for (size_t i = 0; i < changes.size(); ++i) note += (i ? ", " : "; changed: ") + changes[i];
  std::fprintf(stderr, "statex train: %s\n", note.c_str());
  // Keep the curve of the interrupted run up to the checkpoint, when its results file is there.
  if (!opt.out_path.empty() && access(opt.out_path.c_str(), R_OK) == 0) {
    try {
      RunRecord old = read_results(opt.out_path);
      for (auto& p : old.curve)
        if (p.step <= step) rec.curve.push_back(p);
      for (auto& e : old.evals)
        if (e.step <= step) rec.evals.push_back(e);
      if (old.expansion.happened && old.expansion.step <= step) rec.expansion = old.expansion;
      rec.resume_log = old.resume_log;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "warning: could not read earlier results '%s' (%s); curve restarts\n",
                   opt.out_path.c_str(), e.what());
    }
  }
  rec.resume_log += (rec.resume_log.empty() ? "" : "\n") + note;
}

void Trainer::Impl::save_checkpoint_file(const std::string& path) {
  Checkpoint ck;
  ck.model = model->config();
  ck.step = step;
  ck.table = model->table();
  ck.params = model->get_params();
  ck.has_optimizer = true;
  ck.exp_avg.resize(model->n_params());
  ck.exp_avg_sq.resize(model->n_params());
  be->to_host(ck.exp_avg.data(), adam->exp_avg(), ck.exp_avg.size() * sizeof(float));
  be->to_host(ck.exp_avg_sq.data(), adam->exp_avg_sq(), ck.exp_avg_sq.size() * sizeof(float));
  std::vector<int> ts(adam->tensor_steps().begin(), adam->tensor_steps().end());
  OptionRegistry reg(cfg);
  ck.trainer_attrs = {{"config_ini", reg.to_ini()},
                      {"schedule_start", std::to_string(schedule.start)},
                      {"schedule_length", std::to_string(schedule.length)},
                      {"schedule_warmup", std::to_string(schedule.warmup)},
                      {"tensor_steps", join(ts)},
                      {"expanded", rec.expansion.happened ? "1" : "0"},
                      {"statex_step", std::to_string(rec.expansion.step)},
                      {"wall_time_s", std::to_string(wall_time())},
                      {"tokens_seen", format_float(rec.tokens_seen)}};
  save_checkpoint(path, ck);
}

void Trainer::Impl::write_results() {
  if (opt.out_path.empty()) return;
  rec.steps_done = step;
  statex::write_results(opt.out_path, rec);
}

int Trainer::Impl::fail(const std::string& why) {
  rec.status = "failed";
  rec.failure_reason = why;
  rec.wall_time_s = wall_time();
  std::fprintf(stderr, "statex train: run failed: %s\n", why.c_str());
  write_results();
  return kExitFailed;
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

void Trainer::Impl::do_eval(Progress& progress) {
  EvalPoint e = evaluate(*model, *test_set, cfg.train.batch_size, *batch_buf, step);
  rec.evals.push_back(e);
  progress.eval(step, e);
}

// At the expansion step: StateX arm expands the selected layers; control restarts the same
// schedule without expanding. Both record the event and accuracy just before and right after.
void Trainer::Impl::expansion_event(Progress& progress) {
  ExpansionEvent& ev = rec.expansion;
  ev.happened = true;
  ev.step = step;
  ev.mode = cfg.statex.arm == "control" ? "none" : cfg.statex.mode;
  ev.layers = select_layers(cfg.statex, model->config().n_layers);
  ev.state_scalars_before = model->state_size().total_state_scalars();
  ev.params_before = model->n_params();
  ev.accuracy_before =
      evaluate(*model, *test_set, cfg.train.batch_size, *batch_buf, step).accuracy;

  if (cfg.statex.arm != "control") {
    std::vector<float> old_m(model->n_params()), old_v(model->n_params());
    be->to_host(old_m.data(), adam->exp_avg(), old_m.size() * sizeof(float));
    be->to_host(old_v.data(), adam->exp_avg_sq(), old_v.size() * sizeof(float));
    ParamTable old_table = model->table();
    std::vector<int64_t> old_steps = adam->tensor_steps();
    Expansion x = expand_model(model->config(), old_table, model->get_params(), cfg.statex,
                               cfg.train.seed + 0x5ca1ab1eull);
    build_model(x.cfg);
    model->set_params(x.params);
    // Moments: kept for unchanged tensors (unless statex.reset_optimizer), zero for new ones.
    std::vector<float> m(model->n_params(), 0.f), v(model->n_params(), 0.f);
    const auto& entries = model->table().entries();
    for (size_t i = 0; i < entries.size(); ++i) {
      if (x.fresh[i] || cfg.statex.reset_optimizer) continue;
      const ParamEntry& old = old_table.at(entries[i].name);
      std::copy_n(old_m.begin() + old.offset, old.numel(), m.begin() + entries[i].offset);
      std::copy_n(old_v.begin() + old.offset, old.numel(), v.begin() + entries[i].offset);
      size_t oi = &old - old_table.entries().data();
      adam->tensor_steps()[i] = old_steps[oi];
    }
    be->to_device(adam->exp_avg(), m.data(), m.size() * sizeof(float));
    be->to_device(adam->exp_avg_sq(), v.data(), v.size() * sizeof(float));
    rec.state = model->state_size();
    rec.n_params = model->n_params();
  } else if (cfg.statex.reset_optimizer) {
    be->zero(adam->exp_avg(), model->n_params() * sizeof(float));
    be->zero(adam->exp_avg_sq(), model->n_params() * sizeof(float));
    for (auto& t : adam->tensor_steps()) t = 0;
  }
  // The schedule restarts with its own warm-up over the remaining steps.
  schedule.start = step;
  schedule.length = cfg.train.steps - step;
  schedule.warmup = cfg.statex.warmup_steps;
  ev.state_scalars_after = model->state_size().total_state_scalars();
  ev.params_after = model->n_params();
  ev.accuracy_after =
      evaluate(*model, *test_set, cfg.train.batch_size, *batch_buf, step).accuracy;
  progress.note("StateX (" + cfg.statex.arm + ") at step " + std::to_string(step) + ": layers " +
                join(ev.layers) + ", state " + std::to_string(ev.state_scalars_before) + " -> " +
                std::to_string(ev.state_scalars_after) + " scalars, acc " +
                format_float(ev.accuracy_before) + " -> " + format_float(ev.accuracy_after));
}

int Trainer::Impl::loop() {
  const TrainConfig& tc = cfg.train;
  Progress progress(tc.steps, opt.quiet, opt.progress_every_s);
  if (step == 0) do_eval(progress);
  write_results();
  auto last_tick = Clock::now();
  while (step < tc.steps) {
    if (expand_at >= 0 && step == expand_at && !rec.expansion.happened) expansion_event(progress);
    MqarBatch hb = make_train_batch(*train_set, step, tc.batch_size);
    DeviceBatch db = batch_buf->upload(hb);
    model->zero_grads();
    float loss = model->forward(db);
    if (!std::isfinite(loss))
      return fail("non-finite loss (" + format_float(loss) + ") at step " +
                  std::to_string(step + 1));
    model->backward(db);
    double norm = std::sqrt(be->sum_squares(model->grads(), model->n_params()));
    if (!std::isfinite(norm))
      return fail("non-finite gradient norm at step " + std::to_string(step + 1));
    float scale = (tc.grad_clip > 0 && norm > tc.grad_clip) ? float(tc.grad_clip / norm) : 1.0f;
    ++step;
    float lr = float(schedule.lr(step));
    adam->step(model->params(), model->grads(), lr, scale);

    auto now = Clock::now();
    double dt = std::chrono::duration<double>(now - last_tick).count();
    last_tick = now;
    double tokens = double(hb.B) * hb.T;
    rec.tokens_seen += tokens;
    rec.curve.push_back(CurvePoint{step, loss, lr, float(norm), float(tokens / std::max(dt, 1e-9))});
    progress.step(step, loss, lr, tokens / std::max(dt, 1e-9));

    bool last = step == tc.steps;
    if (step % tc.eval_every == 0 || last) {
      do_eval(progress);
      rec.wall_time_s = wall_time();
      if (rec.expansion.happened) rec.expansion.accuracy_end = rec.evals.back().accuracy;
      write_results();
      bool target_hit = tc.target_accuracy > 0 && rec.evals.back().accuracy >= tc.target_accuracy;
      if (target_hit && !last) {
        progress.note("target accuracy " + format_float(tc.target_accuracy) + " reached at step " +
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

Trainer::Trainer(ExperimentConfig cfg, TrainerOptions opt)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(opt))) {}
Trainer::~Trainer() = default;
const RunRecord& Trainer::record() const { return impl_->rec; }

int Trainer::run() {
  impl_->t0 = Clock::now();
  install_interrupt_handlers();
  impl_->setup();  // config / file errors throw before anything is written
  if (!impl_->opt.quiet) print_run_header(impl_->rec, impl_->opt, impl_->step, stderr);
  try {
    return impl_->loop();
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    return impl_->fail(e.what());
  }
}

}  // namespace statex
