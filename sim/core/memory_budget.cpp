// Memory estimates: see memory_budget.h.
#include "sim/core/memory_budget.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "sim/core/config.h"

namespace statex {

namespace {

double physical_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
}

double rlimit_bytes(int resource) {
  rlimit rl{};
  if (getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0.0;
  return double(rl.rlim_cur);
}

// cgroup v2: memory.max of this process's cgroup ("max" = none).
double cgroup_limit_bytes() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  if (path.empty()) return 0.0;
  std::ifstream in("/sys/fs/cgroup" + path + "/memory.max");
  std::string v;
  if (!(in >> v) || v == "max") return 0.0;
  try {
    return std::stod(v);
  } catch (const std::exception&) {
    return 0.0;
  }
}

}  // namespace

double memory_limit_bytes() {
  double have = 0.0;
  for (double x : {physical_memory_bytes(), rlimit_bytes(RLIMIT_AS), rlimit_bytes(RLIMIT_DATA),
                   cgroup_limit_bytes()})
    if (x > 0 && (have == 0 || x < have)) have = x;
  return have;
}

std::string gib(double bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / double(1ull << 30));
  return buf;
}

void require_memory(double bytes, const std::string& what, const std::string& detail,
                    const std::string& fix) {
  const double have = memory_limit_bytes();
  if (have <= 0 || bytes <= have) return;
  throw ConfigError(what + " would need about " + gib(bytes) + " of memory" +
                    (detail.empty() ? "" : " (" + detail + ")") + ", more than this machine's " +
                    gib(have) + "; " + fix);
}

int64_t checked_numel(const int64_t* dims, int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0) return -1;
    if (dims[i] != 0 && n > std::numeric_limits<int64_t>::max() / dims[i]) return -1;
    n *= dims[i];
  }
  return n;
}

}  // namespace statex
