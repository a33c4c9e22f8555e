// STUB: statex verify is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_verify(int, char**) {
  std::fprintf(stderr, "statex verify: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
