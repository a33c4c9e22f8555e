// Runs verification cases on the CPU and CUDA backends and compares every output.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>

#include "sim/verify/verify.h"

#ifdef STATEX_WITH_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace statex::verify {

namespace {

// Backend allocations of one case, freed on scope exit (also when an op throws).
class Allocation {
 public:
  Allocation(Backend& be, const Case& c) : be_(be) {
    for (const auto& [name, t] : c.tensors) {
      size_t bytes = t.size() * 4;  // float and int are both 4 bytes
      void* p = be_.malloc_bytes(bytes);
      bufs_.ptr[name] = p;
    }
  }
  ~Allocation() {
    for (auto& [name, p] : bufs_.ptr) {
      try {
        be_.free_bytes(p);
      } catch (...) {  // a faulted CUDA context: nothing more to do
      }
    }
  }
  const Bufs& bufs() const { return bufs_; }

 private:
  Backend& be_;
  Bufs bufs_;
};

const void* host_data(const Tensor& t) {
  return t.is_int ? static_cast<const void*>(t.i.data()) : static_cast<const void*>(t.f.data());
}

void upload(Backend& be, const Case& c, const Bufs& b) {
  for (const auto& [name, t] : c.tensors) be.to_device(b.ptr.at(name), host_data(t), t.size() * 4);
}

// On the CUDA backend: synchronise after every launch during the correctness run (a fault is
// then reported by the op that caused it), not during timing.
void debug_sync(Backend& be, bool on) {
#ifdef STATEX_WITH_CUDA
  if (dynamic_cast<CudaBackend*>(&be)) CudaBackend::set_sync_after_launch(on);
#else
  (void)be;
  (void)on;
#endif
}

// Runs the case once for its outputs, then `reps` more times for the mean time per call.
std::map<std::string, Tensor> execute(Backend& be, const Case& c, int reps, double* ms) {
  Allocation a(be, c);
  upload(be, c, a.bufs());
  debug_sync(be, true);
  c.run(be, a.bufs());
  be.synchronize();
  debug_sync(be, false);
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : c.tensors) {
    if (t.role != Tensor::Output) continue;
    Tensor r = t;
    be.to_host(t.is_int ? static_cast<void*>(r.i.data()) : static_cast<void*>(r.f.data()),
               a.bufs().ptr.at(name), t.size() * 4);
    out[name] = std::move(r);
  }
  *ms = 0;
  if (reps > 0) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) c.run(be, a.bufs());
    be.synchronize();
    auto t1 = std::chrono::steady_clock::now();
    *ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
  }
  return out;
}

OutputDiff compare(const std::string& name, const Tensor& ref, const Tensor& got, double tol) {
  OutputDiff d;
  d.name = name;
  size_t n = ref.size();
  if (ref.is_int) {
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      if (ref.i[i] != got.i[i]) {
        if (bad == 0) {
          d.worst = i;
          d.ref_at_worst = ref.i[i];
          d.got_at_worst = got.i[i];
        }
        ++bad;
      }
    }
    d.max_abs = double(bad);  // for integers: the number of mismatches
    d.rel_rms = n ? double(bad) / n : 0.0;
    d.pass = bad == 0;
    return d;
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double r = ref.f[i], g = got.f[i];
    if (!std::isfinite(r) || !std::isfinite(g)) {
      if (d.finite) {
        d.worst = i;
        d.ref_at_worst = r;
        d.got_at_worst = g;
      }
      d.finite = false;
      continue;
    }
    double e = std::fabs(r - g);
    if (e > d.max_abs && d.finite) {
      d.max_abs = e;
      d.worst = i;
      d.ref_at_worst = r;
      d.got_at_worst = g;
    } else if (e > d.max_abs) {
      d.max_abs = e;
    }
    num += e * e;
    den += r * r;
  }
  d.rel_rms = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (!d.finite) d.rel_rms = std::nan("");
  d.pass = d.finite && d.rel_rms <= tol;
  return d;
}

}  // namespace

Row run_case(Backend& cpu, Backend& gpu, const Case& c, const Options& opt) {
  Row r;
  r.op = c.op;
  r.group = c.group;
  r.shape = c.shape;
  const Tolerance case_tol = tolerance_for(c.tol);
  r.tol = case_tol.rel_rms;
  r.tol_why = case_tol.why;
  r.flops = c.flops;
  r.bytes = c.bytes;
  r.compute_bound = c.compute_bound;
  std::map<std::string, Tensor> ref, got;
  try {
    ref = execute(cpu, c, opt.cpu_reps, &r.cpu_ms);
  } catch (const std::exception& e) {
    r.error = std::string("CPU: ") + e.what();
    return r;
  }
  try {
    got = execute(gpu, c, opt.gpu_reps, &r.gpu_ms);
  } catch (const std::exception& e) {
    r.error = std::string("GPU: ") + e.what();
    return r;
  }
  r.pass = true;
  double worst = -1;
  for (const auto& [name, t] : ref) {
    auto own = c.tensor_tol.find(name);
    const Tolerance tol = own == c.tensor_tol.end() ? case_tol : tolerance_for(own->second);
    OutputDiff d = compare(name, t, got.at(name), tol.rel_rms);
    r.pass = r.pass && d.pass;
    // The worst output is the one nearest its own tolerance (error / tolerance).
    double key = std::isnan(d.rel_rms) ? 1e300
                 : tol.rel_rms > 0     ? d.rel_rms / tol.rel_rms
                                       : (d.rel_rms > 0 ? 1e299 : 0.0);
    if (key > worst) {
      worst = key;
      r.worst_output = name;
      r.rel_rms = d.rel_rms;
      r.tol = tol.rel_rms;
      r.tol_why = tol.why;
    }
    r.max_abs = std::max(r.max_abs, d.max_abs);
    r.outputs.push_back(d);
  }
  return r;
}

std::vector<Row> run(Backend& cpu, Backend& gpu, const Options& opt) {
  std::vector<Case> cases;
  if (!opt.bench_only) cases = make_cases(false, opt.seed);
  if (opt.bench || opt.bench_only) {
    auto more = make_cases(true, opt.seed + 100000);
    for (auto& c : more) cases.push_back(std::move(c));
  }
  std::vector<Row> rows;
  // An op of the op list without a case fails the run (not only the coverage test).
  if (!opt.bench_only && opt.filter.empty())
    for (const std::string& label : missing_cases(cases)) {
      Row r;
      r.op = label;
      r.group = case_op(label).stem;
      r.error = "no verify case for this op of sim/core/ops.def (add one in verify_cases.cpp)";
      rows.push_back(std::move(r));
    }
  for (const auto& c : cases) {
    if (!opt.filter.empty() && c.op.find(opt.filter) == std::string::npos &&
        c.group.find(opt.filter) == std::string::npos)
      continue;
    if (opt.verbose) std::fprintf(stderr, "verify: %s [%s]\n", c.op.c_str(), c.shape.c_str());
    Row r = run_case(cpu, gpu, c, opt);
    if (c.bench_only) r.group += " (bench)";
    rows.push_back(std::move(r));
  }
  return rows;
}

Peaks device_peaks(Backend& gpu, bool measure) {
  Peaks p;
  p.device = gpu.name();
#ifdef STATEX_WITH_CUDA
  if (auto* cb = dynamic_cast<CudaBackend*>(&gpu)) {
    try {
      p.device = cb->device_name();
      p.fp32_tflops = cb->nominal_fp32_tflops();
      p.dram_gbps = cb->nominal_dram_gbps();
      if (measure) {
        p.measured_fp32_tflops = cb->measured_fp32_tflops();
        p.measured_dram_gbps = cb->measured_dram_gbps();
      }
    } catch (const std::exception&) {
    }
  }
#endif
  return p;
}

void print_table(const std::vector<Row>& rows, bool bench, const Peaks& peaks, FILE* f) {
  std::fprintf(f, "%-30s %-44s %-14s %10s %10s %8s %-32s %-6s %9s %9s\n", "op", "shape",
               "worst output", "max abs", "rel RMS", "tol", "tolerance reason", "result",
               "CPU ms", "GPU ms");
  int n_fail = 0;
  for (const auto& r : rows) {
    if (!r.pass) ++n_fail;
    std::fprintf(f, "%-30s %-44s %-14s %10.2e %10.2e %8.0e %-32s %-6s %9.3f %9.3f\n",
                 r.op.c_str(), r.shape.c_str(), r.worst_output.c_str(), r.max_abs, r.rel_rms,
                 r.tol, r.tol_why.c_str(), r.pass ? "PASS" : (r.error.empty() ? "FAIL" : "ERROR"),
                 r.cpu_ms, r.gpu_ms);
    if (!r.error.empty()) std::fprintf(f, "    error: %s\n", r.error.c_str());
    for (const auto& d : r.outputs) {
      if (d.pass) continue;
      std::fprintf(f, "    %s: rel RMS %.3e, max abs %.3e%s; worst element %zu: cpu %.8g gpu %.8g\n",
                   d.name.c_str(), d.rel_rms, d.max_abs, d.finite ? "" : " (non-finite values)",
                   d.worst, d.ref_at_worst, d.got_at_worst);
    }
  }
  std::fprintf(f, "\n%zu cases, %d failed -> %s\n", rows.size(), n_fail,
               n_fail ? "FAIL" : "ALL PASS");
  if (bench) print_bench_table(rows, peaks, f);
}

void print_bench_table(const std::vector<Row>& rows, const Peaks& peaks, FILE* f) {
  std::fprintf(f,
               "\nBenchmark (%s; measured peaks: %.1f TFLOP/s fp32 FMA loop, %.0f GB/s DRAM copy;"
               " nominal: %.1f TFLOP/s, %.0f GB/s)\n",
               peaks.device.c_str(), peaks.measured_fp32_tflops, peaks.measured_dram_gbps,
               peaks.fp32_tflops, peaks.dram_gbps);
  std::fprintf(f, "%-30s %-44s %9s %10s %9s %9s %-8s %9s %8s\n", "op", "shape", "GPU ms",
               "GFLOP/s", "GB/s", "% peak", "bound", "CPU ms", "speedup");
  for (const auto& r : rows) {
    if (r.group.find("(bench)") == std::string::npos || r.gpu_ms <= 0) continue;
    double s = r.gpu_ms * 1e-3;
    double gflops = r.flops / s / 1e9, gbps = r.bytes / s / 1e9;
    double frac = r.compute_bound ? (peaks.compute() > 0 ? gflops / (peaks.compute() * 1e3) : 0)
                                  : (peaks.memory() > 0 ? gbps / peaks.memory() : 0);
    std::fprintf(f, "%-30s %-44s %9.3f %10.1f %9.1f %8.1f%% %-8s %9.2f %7.1fx\n", r.op.c_str(),
                 r.shape.c_str(), r.gpu_ms, gflops, gbps, 100 * frac,
                 r.compute_bound ? "compute" : "memory", r.cpu_ms,
                 r.gpu_ms > 0 ? r.cpu_ms / r.gpu_ms : 0.0);
  }
  std::fprintf(f,
               "(GFLOP/s and GB/s are per-op work estimates; %% peak is of the measured peaks "
               "(nominal where not measured); scans are counted as compute bound at 4 flop per "
               "state element and step.)\n");
}

}  // namespace statex::verify
