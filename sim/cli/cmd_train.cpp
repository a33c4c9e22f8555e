// STUB: statex train is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_train(int, char**) {
  std::fprintf(stderr, "statex train: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
