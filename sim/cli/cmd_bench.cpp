// STUB: statex bench is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_bench(int, char**) {
  std::fprintf(stderr, "statex bench: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
