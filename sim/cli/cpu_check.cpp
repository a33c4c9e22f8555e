// Refuses, before anything else runs, a CPU that lacks the instructions this binary was compiled
// for: the portable flavour needs x86-64-v3 (AVX2 + FMA), a native build the SIMD of the machine
// that built it. Without this, such a CPU dies on SIGILL in some static initializer.
// This file alone is compiled for baseline x86-64 (CMakeLists.txt) so that the check itself runs
// anywhere.
#include <cstdio>
#include <cstdlib>

namespace {

#if defined(__x86_64__)
__attribute__((constructor(101))) void refuse_unsupported_cpu() {
  __builtin_cpu_init();
  const char* missing = nullptr;
#ifdef STATEX_NEEDS_AVX512F
  if (!__builtin_cpu_supports("avx512f")) missing = "AVX-512 (it was built with -march=native on "
                                                    "another machine)";
#endif
#ifdef STATEX_NEEDS_X86_64_V3
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    missing = "AVX2 and FMA (x86-64-v3: Intel Haswell, AMD Zen or later)";
#endif
  if (!missing) return;
  std::fprintf(stderr,
               "statex: error: this CPU lacks %s, which this statex binary was compiled for; "
               "rebuild on this machine with `cmake -DSTATEX_FLAVOUR=native` "
               "(docs/reproducibility.md)\n", missing);
  std::_Exit(2);
}
#endif

}  // namespace
