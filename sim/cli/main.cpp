// statex: one binary, one subcommand per user task.
#include <hdf5.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "sim/cli/commands.h"
#include "sim/core/config.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"train", statex::cli::cmd_train, "train a model on MQAR (StateX optional); writes HDF5 results"},
    {"eval", statex::cli::cmd_eval, "evaluate a checkpoint on MQAR or on a token file"},
    {"expand", statex::cli::cmd_expand, "apply StateX state expansion to a checkpoint"},
    {"grad", statex::cli::cmd_grad, "loss, logits and parameter gradients of a checkpoint (parity checks)"},
    {"sweep", statex::cli::cmd_sweep, "run an ablation sweep locally or on Slurm"},
    {"verify", statex::cli::cmd_verify, "check every CUDA op against the CPU reference"},
    {"bench", statex::cli::cmd_bench, "measure train-step throughput and fraction of peak"},
    {"data", statex::cli::cmd_data, "write a task's generated train/test set to token files"},
    {"info", statex::cli::cmd_info, "print build info, parameter counts and state sizes"},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: statex <command> [options]   (statex <command> --help for options)\n\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-8s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  // All HDF5 files are closed explicitly. Without this, HDF5's exit handler retries the close of
  // a file whose close failed (a full disk) and crashes with SIGSEGV.
  H5dont_atexit();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::string(argv[1]) != c.name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const statex::ConfigError& e) {
      std::fprintf(stderr, "statex %s: error: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "statex %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "statex: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
