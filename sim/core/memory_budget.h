#pragma once
// Memory estimates before large allocations (docs/exit_codes.md, "Bad input refused up front"):
// every command that would allocate in proportion to its input (the model and batch of `train`,
// `eval` and `grad`, the sets `data` writes, the datasets a file declares) estimates the bytes
// first, in doubles so that absurd sizes cannot overflow, and refuses with a ConfigError that
// gives the estimate, the memory it would exceed and the options to reduce.
#include <cstdint>
#include <string>

namespace statex {

// The memory this process may use, in bytes: the smallest of the machine's physical memory,
// RLIMIT_AS / RLIMIT_DATA when set, and the cgroup's memory.max when readable. 0 = unknown.
double memory_limit_bytes();

// "1.5 GiB" (one decimal).
std::string gib(double bytes);

// Throws ConfigError "<what> would need about <X GiB> of memory (<detail>), more than this
// machine's <Y GiB>; <fix>" when `bytes` exceeds memory_limit_bytes().
void require_memory(double bytes, const std::string& what, const std::string& detail,
                    const std::string& fix);

// Element count of a shape, or -1 when the product does not fit an int64 (or a dim is < 0).
int64_t checked_numel(const int64_t* dims, int rank);

}  // namespace statex
