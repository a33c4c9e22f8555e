// STUB: statex info is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_info(int, char**) {
  std::fprintf(stderr, "statex info: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
