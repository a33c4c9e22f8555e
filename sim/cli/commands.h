#pragma once
// One function per `statex <subcommand>`; each parses its own options (Boost.Program_options)
// from argv (argv[0] is the subcommand name) and returns the process exit code.
namespace statex::cli {
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_verify(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_expand(int argc, char** argv);
int cmd_grad(int argc, char** argv);
int cmd_data(int argc, char** argv);
}  // namespace statex::cli
