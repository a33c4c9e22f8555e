// STUB: statex expand is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_expand(int, char**) {
  std::fprintf(stderr, "statex expand: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
