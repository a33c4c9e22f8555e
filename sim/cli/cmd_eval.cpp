// STUB: statex eval is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_eval(int, char**) {
  std::fprintf(stderr, "statex eval: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
