// STUB: statex sweep is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_sweep(int, char**) {
  std::fprintf(stderr, "statex sweep: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
