// STUB: statex grad is not implemented yet.
#include <cstdio>

#include "sim/cli/commands.h"

namespace statex::cli {
int cmd_grad(int, char**) {
  std::fprintf(stderr, "statex grad: not implemented yet\n");
  return 3;
}
}  // namespace statex::cli
