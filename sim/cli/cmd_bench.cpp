// statex bench: train-step throughput of named reference configs, model FLOP/s and the fraction
// of this machine's SGEMM peak measured in the same run.
//
// FLOP count (documented in README.md "Speed" and docs/performance.md): a train step costs 3x the
// forward FLOPs (forward + backward of inputs and weights), forward = sum over layers of the
// mixer's flops_per_token (projections 2·in·out per token, conv 2·W·C, recurrence 4·state scalars per
// token) + MLP, times B·T tokens, plus the LM head 2·D·V per LABELLED position (the head runs
// only there). Elementwise ops and norms are not counted.
//
// Peak: the same backend's linear_forward on a 2048x2048x2048 fp32 GEMM, best of 3.
//
// With --device cuda each preset is also timed on the CPU path in the same process (--cpu-steps)
// for the GPU/CPU ratio, and --kernels adds the per-kernel table of `statex verify --bench`
// (GFLOP/s, GB/s, % of the card's measured peaks; every kernel also checked against the CPU).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "sim/cli/commands.h"
#include "sim/core/backend.h"
#include "sim/core/op_timing_backend.h"
#include "sim/core/options.h"
#include "sim/model/arena.h"
#include "sim/model/model.h"
#include "sim/model/param_layout.h"
#include "sim/ops/cpu/detail/gemm.h"
#include "sim/task/mqar.h"
#include "sim/train/device_batch.h"
#include "sim/train/optimizer.h"
#include "sim/train/train_step.h"
#include "sim/verify/verify.h"

namespace po = boost::program_options;

namespace statex::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Preset {
  std::string name, model;
  int D, V, T, K, B;
};

// The reference configs of issues 2 and 8 (2 layers, no MLP, Zoology MQAR defaults).
const std::vector<Preset> kPresets = {
    {"quickstart-gla", "gla", 64, 256, 64, 4, 64},
    {"quickstart-mamba2", "mamba2", 64, 256, 64, 4, 64},
    {"gla-d128", "gla", 128, 8192, 256, 16, 64},
    {"mamba2-d128", "mamba2", 128, 8192, 256, 16, 64},
    {"gla-d256", "gla", 256, 8192, 512, 16, 64},
    {"mamba2-d256", "mamba2", 256, 8192, 512, 16, 64},
    // Softmax attention at the same shapes (issue 18); heads of 64 as GLA's.
    {"quickstart-attention", "attention", 64, 256, 64, 4, 64},
    {"attention-d128", "attention", 128, 8192, 256, 16, 64},
    {"attention-d256", "attention", 256, 8192, 512, 16, 64},
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double measure_gemm_peak(Backend& be, int n) {
  Arena a(be);
  float* x = a.floats(size_t(n) * n);
  float* w = a.floats(size_t(n) * n);
  float* y = a.floats(size_t(n) * n);
  std::vector<float> h(size_t(n) * n, 0.01f);
  be.to_device(x, h.data(), h.size() * sizeof(float));
  be.to_device(w, h.data(), h.size() * sizeof(float));
  be.linear_forward(y, x, w, nullptr, n, n, n);  // warm-up
  be.synchronize();
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    auto t = Clock::now();
    be.linear_forward(y, x, w, nullptr, n, n, n);
    be.synchronize();
    best = std::min(best, seconds_since(t));
  }
  return 2.0 * n * n * double(n) / best / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct BenchResult {
  double step_s, tokens_per_s, gflops;
};

// With `prof` (a timing wrapper around the device's backend) the model runs on it, and its
// per-op statistics cover the timed steps only.
BenchResult bench_preset(Backend& device, const ExperimentConfig& base, const Preset& p, int steps,
                         OpTimingBackend* prof) {
  Backend& be = prof ? *prof : device;
  ExperimentConfig cfg = base;
  cfg.model.model = p.model;
  cfg.model.d_model = p.D;
  cfg.model.vocab_size = p.V;
  cfg.model.n_layers = 2;
  cfg.model.mlp = false;
  cfg.model.heads = std::max(1, p.D / 64);  // GLA head dim 32..64 as fla's small configs; attention 64
  MqarDataset ds({{p.T, p.K, 100000}}, p.V, cfg.mqar.power_a, false, 1, Split::train);
  Model model(cfg.model, be, p.B * p.T, cfg.train.gla_chunk, cfg.train.ssd_chunk);
  std::vector<float> params;
  init_params(cfg.model, model.table(), 0, params);
  model.set_params(params);
  AdamW adam(be, model.table(), cfg.train);
  DeviceBatchBuffer buf(be);
  MqarBatch hb = make_train_batch(ds, 0, p.B);
  DeviceBatch db = buf.upload(hb);
  auto one_step = [&] { train_step(model, adam, db, 1e-3f, cfg.train.grad_clip); };
  one_step();  // warm-up
  be.synchronize();
  if (prof) prof->reset();
  // The median step time: on a shared machine one step can stall for a multiple of its usual
  // time, which would dominate a mean over a few steps.
  std::vector<double> step_times;
  for (int s = 0; s < steps; ++s) {
    auto t = Clock::now();
    one_step();
    be.synchronize();
    step_times.push_back(seconds_since(t));
  }
  double step_s = median(step_times);
  double tokens = double(p.B) * p.T;
  double flops = 3.0 * (model.flops_per_token(p.T) * tokens + 2.0 * p.D * p.V * db.M);
  return {step_s, tokens / step_s, flops / step_s / 1e9};
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  ExperimentConfig cfg;
  std::string preset = "quickstart-gla,quickstart-mamba2,gla-d128,mamba2-d128";
  int steps = 5, peak_n = 2048, cpu_steps = 2;
  bool profile = false, kernels = false;
  po::options_description extra("Bench options");
  extra.add_options()("preset", po::value<std::string>(&preset)->default_value(preset),
                      "comma-separated presets, or 'all' (quickstart-gla, quickstart-mamba2, "
                      "gla-d128, mamba2-d128, gla-d256, mamba2-d256)")(
      "steps", po::value<int>(&steps)->default_value(5), "timed train steps per preset")(
      "peak-n", po::value<int>(&peak_n)->default_value(2048), "size of the square peak GEMM")(
      "profile", po::bool_switch(&profile),
      "also print each preset's time per op (ops synchronised one by one)")(
      "cpu-steps", po::value<int>(&cpu_steps)->default_value(2),
      "with --device cuda: also time each preset on the CPU path for this many steps and print "
      "the GPU/CPU ratio (0: skip)")(
      "kernels", po::bool_switch(&kernels),
      "with --device cuda: first a per-kernel table (GFLOP/s, GB/s, % of the card's measured "
      "peaks), the benchmark shapes of statex verify --bench; exits 1 if a kernel's output does "
      "not match the CPU reference");
  auto vm = parse_experiment(argc, argv, cfg, extra,
                             "usage: statex bench [--device cpu|cuda] [--preset a,b|all]");
  if (vm.count("help")) return 0;
  if (steps < 1) throw ConfigError("--steps must be >= 1");
  if (cpu_steps < 0) throw ConfigError("--cpu-steps must be >= 0 (0 skips the CPU comparison)");
  const bool on_gpu = cfg.train.device == "cuda";
  if (kernels && !on_gpu)
    throw ConfigError("--kernels times the CUDA kernels: add --device cuda (on a GPU machine)");
  if (cfg.train.threads > 0) omp_set_num_threads(cfg.train.threads);
  auto be = make_backend(cfg.train.device);

  std::vector<Preset> chosen;
  if (preset == "all") {
    chosen = kPresets;
  } else {
    std::stringstream ss(preset);
    std::string name;
    while (std::getline(ss, name, ',')) {
      auto it = std::find_if(kPresets.begin(), kPresets.end(),
                             [&](const Preset& p) { return p.name == name; });
      if (it == kPresets.end())
        throw ConfigError("--preset: unknown preset '" + name + "' (see statex bench --help)");
      chosen.push_back(*it);
    }
  }
  int kernel_failures = 0;  // benchmark kernels whose output does not match the CPU reference
  if (kernels) {
    auto cpu = make_cpu_backend();
    verify::Options vopt;
    vopt.bench = vopt.bench_only = true;
    const std::vector<verify::Row> rows = verify::run(*cpu, *be, vopt);
    verify::print_bench_table(rows, verify::device_peaks(*be, /*measure=*/true), stdout);
    for (const auto& r : rows) kernel_failures += r.pass ? 0 : 1;
    std::printf("kernel check against the CPU reference: %d of %zu cases failed%s\n\n",
                kernel_failures, rows.size(),
                kernel_failures ? " (statex verify --bench-only shows which)" : "");
  }
  std::unique_ptr<Backend> cpu_ref;  // the CPU path, for the GPU/CPU ratio
  if (on_gpu && cpu_steps > 0) cpu_ref = make_cpu_backend();
  double peak = measure_gemm_peak(*be, peak_n);
  const std::string gemm =
      cfg.train.device == "cpu" ? std::string(", CPU GEMM ") + gemm_library() : "";
  std::printf("device %s, %d OpenMP threads%s; measured SGEMM peak %.1f GFLOP/s (%dx%dx%d, "
              "best of 3)\n\n",
              be->name().c_str(), omp_get_max_threads(), gemm.c_str(), peak, peak_n, peak_n,
              peak_n);
  std::printf("step ms: median of %d timed steps after one warm-up step\n", steps);
  if (cpu_ref)
    std::printf("cpu tokens/s: the CPU path (%d OpenMP threads, CPU GEMM %s), median of %d steps\n",
                omp_get_max_threads(), gemm_library(), cpu_steps);
  std::printf("%-18s %-7s %5s %5s %5s %4s %4s %11s %12s %10s %9s%s\n", "preset", "model", "D", "V",
              "T", "K", "B", "step ms", "tokens/s", "GFLOP/s", "of peak",
              cpu_ref ? "  cpu tokens/s  gpu/cpu" : "");
  for (const Preset& p : chosen) {
    std::unique_ptr<OpTimingBackend> prof;
    if (profile) prof = std::make_unique<OpTimingBackend>(*be);
    BenchResult r = bench_preset(*be, cfg, p, steps, prof.get());
    std::printf("%-18s %-7s %5d %5d %5d %4d %4d %11.2f %12.0f %10.2f %8.1f%%", p.name.c_str(),
                p.model.c_str(), p.D, p.V, p.T, p.K, p.B, r.step_s * 1e3, r.tokens_per_s,
                r.gflops, 100.0 * r.gflops / peak);
    if (cpu_ref) {
      BenchResult c = bench_preset(*cpu_ref, cfg, p, cpu_steps, nullptr);
      std::printf("  %12.0f %7.1fx", c.tokens_per_s, r.tokens_per_s / c.tokens_per_s);
    }
    std::printf("\n");
    if (prof) std::printf("%s\n", prof->table(steps, r.step_s).c_str());
    std::fflush(stdout);
  }
  return kernel_failures ? 1 : 0;
}

}  // namespace statex::cli
