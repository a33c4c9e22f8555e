// statex verify: every CUDA op (forward and every gradient) against the CPU reference, on
// random inputs at several shapes including odd ones; prints a table, optionally writes it to
// HDF5, exits non-zero on any failure. See sim/verify/verify.h for the tolerance policy.
//
// Exit codes: 0 all cases pass; 1 a case failed; 2 bad options; 4 no GPU (or a build without
// CUDA) unless --allow-no-gpu, which turns that into a message and exit code 0.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "sim/cli/commands.h"
#include "sim/core/backend.h"
#include "sim/core/config.h"
#include "sim/core/options.h"
#include "sim/verify/model_check.h"
#include "sim/verify/verify.h"

namespace po = boost::program_options;

namespace statex::cli {

int cmd_verify(int argc, char** argv) {
  verify::Options opt;
  std::string out_path;
  bool allow_no_gpu = false, list = false;
  po::options_description desc(
      "usage: statex verify [options]\n"
      "Checks every CUDA op, forward and backward, against the CPU reference.\n"
      "Exit code: 0 pass, 1 failure, 4 no GPU (0 with --allow-no-gpu)\n\nOptions");
  desc.add_options()
      ("help,h", "this help")
      ("out,o", po::value<std::string>(&out_path), "write the table to this HDF5 file")
      ("op", po::value<std::string>(&opt.filter),
       "only cases whose op or op group contains this string (e.g. gla, linear_backward)")
      ("seed", po::value<unsigned>(&opt.seed)->default_value(1234), "random seed for the inputs")
      ("bench", po::bool_switch(&opt.bench),
       "also run larger benchmark shapes and print GFLOP/s, GB/s and fraction of peak")
      ("bench-only", po::bool_switch(&opt.bench_only),
       "only the benchmark shapes (still checked against the CPU)")
      ("gpu-reps", po::value<int>(&opt.gpu_reps)->default_value(20),
       "timed repetitions per case on the GPU (after the correctness run)")
      ("cpu-reps", po::value<int>(&opt.cpu_reps)->default_value(2), "timed repetitions on the CPU")
      ("allow-no-gpu", po::bool_switch(&allow_no_gpu),
       "without a usable GPU, print why and exit 0 instead of 4")
      ("list", po::bool_switch(&list), "list the cases and exit (no GPU needed)")
      ("verbose,v", po::bool_switch(&opt.verbose), "print each case as it starts");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).style(command_line_style()).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (opt.gpu_reps < 0 || opt.cpu_reps < 0) throw ConfigError("--gpu-reps/--cpu-reps must be >= 0");

  if (opt.bench_only) opt.bench = true;
  if (list) {
    for (bool bench : {false, true}) {
      if (bench && !opt.bench) break;
      for (const auto& c : verify::make_cases(bench, opt.seed))
        std::printf("%-20s %-30s %s\n", c.group.c_str(), c.op.c_str(), c.shape.c_str());
    }
    const auto missing = verify::missing_cases(verify::make_cases(false, opt.seed));
    std::printf("\ncoverage: %zu ops in sim/core/ops.def, %zu labels without a case%s",
                op_list().size(), missing.size(), missing.empty() ? "\n" : ":");
    for (const auto& m : missing) std::printf(" %s", m.c_str());
    if (!missing.empty()) std::printf("\n");
    return missing.empty() ? 0 : 1;
  }

  std::string why;
  if (!cuda_available(&why)) {
    std::fprintf(stderr, "statex verify: cannot run: %s.\n%s\n", why.c_str(),
                 allow_no_gpu ? "(--allow-no-gpu: exiting with code 0; nothing was verified)"
                              : "Run on a machine with an NVIDIA GPU and a CUDA build "
                                "(or pass --allow-no-gpu to make this exit 0).");
    return allow_no_gpu ? 0 : 4;
  }

  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  verify::Peaks peaks = verify::device_peaks(*gpu, /*measure=*/opt.bench);
  std::printf("statex verify: CPU reference vs %s\n\n", peaks.device.c_str());
  std::vector<verify::Row> rows = verify::run(*cpu, *gpu, opt);
  // Whole-model check: a few training steps on both devices from the same init.
  if (!opt.bench_only && (opt.filter.empty() || std::string("model").find(opt.filter) == 0))
    for (auto& r : verify::model_rows(*cpu, *gpu, opt.seed)) rows.push_back(r);
  if (rows.empty()) throw ConfigError("--op '" + opt.filter + "' matches no case (see --list)");
  verify::print_table(rows, opt.bench, peaks, stdout);
  std::fflush(stdout);
  if (!out_path.empty()) {
    verify::write_hdf5(out_path, rows, peaks);
    std::printf("wrote %s\n", out_path.c_str());
  }
  for (const auto& r : rows)
    if (!r.pass) return 1;
  return 0;
}

}  // namespace statex::cli
