#pragma once
// The CPU-vs-CUDA op verification harness behind `statex verify` and tests/test_cuda_ops.cpp.
// Plain C++ against the Backend interface: it compiles (and lists its cases) without CUDA.
//
// For every op it builds random inputs at several shapes, deliberately including odd ones
// (T = 63, D = 60, a final partial chunk, value tiles that do not divide V), runs the CPU
// reference and the CUDA backend on the same inputs, and compares every output: forward
// outputs and EVERY gradient. Outputs a forward op overwrites start as NaN on both sides (an
// element the kernel forgets to write then fails); gradients start as the same random values
// (so the += contract is checked too).
//
// Tolerance policy (one place: tolerance_for() in verify_cases.cpp): the error measure is the
// relative RMS error ||gpu - cpu|| / ||cpu|| over the output tensor; a case passes when every
// output is finite and within its class's bound. Integer outputs (argmax) must match exactly.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/core/backend.h"
#include "sim/core/op_list.h"

namespace statex::verify {

enum class TolClass { Exact, Elementwise, RowReduction, LongReduction, Gemm, Scan, ScanParamGrad };

struct Tolerance {
  double rel_rms;
  const char* why;  // short justification, printed in the table
};
Tolerance tolerance_for(TolClass c);

// One tensor of a case. Inputs are uploaded; outputs are uploaded (initial content), run, and
// downloaded for comparison.
struct Tensor {
  enum Role { Input, Output } role = Input;
  bool is_int = false;
  std::vector<float> f;
  std::vector<int> i;
  size_t size() const { return is_int ? i.size() : f.size(); }
};

// Named backend pointers handed to a case's run function.
class Bufs {
 public:
  std::map<std::string, void*> ptr;
  float* f(const std::string& name) const;  // throws if missing
  int* i(const std::string& name) const;
  float* opt(const std::string& name) const;  // nullptr if absent (optional argument)
};

struct Case {
  std::string op;     // backend method(s), e.g. "rmsnorm_backward"
  std::string group;  // op family for filtering / tests, e.g. "rmsnorm"
  std::string shape;  // e.g. "N=126 C=60"
  TolClass tol = TolClass::Elementwise;
  std::map<std::string, TolClass> tensor_tol;  // per-output exceptions to `tol`
  std::map<std::string, Tensor> tensors;
  std::function<void(Backend&, const Bufs&)> run;
  // For --bench: work per call (0 = not reported), and which one bounds the op.
  double flops = 0, bytes = 0;
  bool compute_bound = false;
  bool bench_only = false;
};

// All verification cases (bench = false), or the larger benchmark cases (bench = true).
std::vector<Case> make_cases(bool bench, unsigned seed);
// The op groups = the op list's stems, in table order (for tests: one test per group).
std::vector<std::string> op_groups();
// The op of the op list a case label names: the label up to "(" (e.g. "gla_backward(=)" ->
// gla_backward). Throws std::logic_error when it names no op.
const OpInfo& case_op(const std::string& label);
// Coverage against the op list (as ggml's test-backend-ops): the labels missing from `cases`.
// Every op needs a case labelled with its name; an op with an `accumulate` flag needs one per
// mode ("op" accumulating, "op(=)" overwriting). Empty = every op covered.
std::vector<std::string> missing_cases(const std::vector<Case>& cases);

struct OutputDiff {
  std::string name;
  double max_abs = 0, rel_rms = 0;
  size_t worst = 0;
  double ref_at_worst = 0, got_at_worst = 0;
  bool finite = true;
  bool pass = true;
};

struct Row {
  std::string op, group, shape;
  std::string worst_output;  // output with the largest rel RMS error
  double max_abs = 0, rel_rms = 0, tol = 0;
  std::string tol_why;
  bool pass = false;
  std::string error;  // exception text if a backend threw
  double cpu_ms = 0, gpu_ms = 0;
  double flops = 0, bytes = 0;
  bool compute_bound = false;
  std::vector<OutputDiff> outputs;
};

struct Options {
  std::string filter;   // substring of op or group; empty = all
  unsigned seed = 1234;
  bool bench = false;   // add the benchmark cases
  bool bench_only = false;  // only the benchmark cases
  int gpu_reps = 20;    // timed repetitions on the GPU (after one warm-up/correctness run)
  int cpu_reps = 2;
  bool verbose = false;
};

// Runs the cases on both backends. Never throws for a failing op: errors land in Row::error.
std::vector<Row> run(Backend& cpu, Backend& gpu, const Options& opt);

// Runs one case (exposed for tests).
Row run_case(Backend& cpu, Backend& gpu, const Case& c, const Options& opt);

// Peaks for the bench "fraction of peak" column: nominal (device attributes) and, when
// `measure` is set, measured on the card (FMA loop, 1 GiB copy); the column uses the measured.
struct Peaks {
  std::string device;
  double fp32_tflops = 0, dram_gbps = 0;                    // nominal
  double measured_fp32_tflops = 0, measured_dram_gbps = 0;  // 0: not measured
  double compute() const { return measured_fp32_tflops > 0 ? measured_fp32_tflops : fp32_tflops; }
  double memory() const { return measured_dram_gbps > 0 ? measured_dram_gbps : dram_gbps; }
};
Peaks device_peaks(Backend& gpu, bool measure);

// The verification table; with `bench` also the benchmark table below it.
void print_table(const std::vector<Row>& rows, bool bench, const Peaks& peaks, FILE* f);
// Benchmark rows only (bench cases that ran on the GPU): ms, GFLOP/s, GB/s, % of peak, speedup.
void print_bench_table(const std::vector<Row>& rows, const Peaks& peaks, FILE* f);
// HDF5 file with one row per case (parallel datasets under /verify). Throws on I/O errors.
void write_hdf5(const std::string& path, const std::vector<Row>& rows, const Peaks& peaks);

}  // namespace statex::verify
