#include "sim/core/provenance.h"

#include <dlfcn.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <gnu/libc-version.h>
#include <omp.h>

#include <Eigen/Core>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "build_info.h"

#ifdef STATEX_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace statex {

namespace {

// Eigen derives its GEMM blocking from the cache sizes it reads with cpuid; the depth block kc
// (from L1) sets the order in which a dot product's partial sums are added, so a CPU with another
// L1 (48 KiB on recent Intel cores) would round differently. The portable flavour fixes them.
constexpr std::ptrdiff_t kPinnedL1 = 32 * 1024, kPinnedL2 = 1024 * 1024, kPinnedL3 = 32 << 20;

std::string join_present(const std::vector<std::pair<const char*, bool>>& flags) {
  std::string out;
  for (const auto& [name, present] : flags)
    if (present) out += (out.empty() ? "" : " ") + std::string(name);
  return out.empty() ? "none" : out;
}

std::string build_isa() {
  return join_present({
#ifdef __SSE4_2__
      {"sse4.2", true},
#endif
#ifdef __AVX__
      {"avx", true},
#endif
#ifdef __AVX2__
      {"avx2", true},
#endif
#ifdef __FMA__
      {"fma", true},
#endif
#ifdef __AVX512F__
      {"avx512f", true},
#endif
#ifdef __AVX512BW__
      {"avx512bw", true},
#endif
#ifdef __AVX512VL__
      {"avx512vl", true},
#endif
      {"", false}});
}

std::string cpu_isa() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return join_present({{"sse4.2", __builtin_cpu_supports("sse4.2")},
                       {"avx", __builtin_cpu_supports("avx")},
                       {"avx2", __builtin_cpu_supports("avx2")},
                       {"fma", __builtin_cpu_supports("fma")},
                       {"avx512f", __builtin_cpu_supports("avx512f")},
                       {"avx512bw", __builtin_cpu_supports("avx512bw")},
                       {"avx512vl", __builtin_cpu_supports("avx512vl")}});
#else
  return "unknown (not x86-64)";
#endif
}

std::string cpu_model_name() {
#if defined(__x86_64__)
  // The brand string from cpuid itself (what the code runs on, also under an emulator).
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i)
      __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    std::string brand(reinterpret_cast<const char*>(regs), sizeof(regs));
    brand = brand.substr(0, brand.find('\0'));
    auto start = brand.find_first_not_of(' ');
    if (start != std::string::npos) return brand.substr(start, brand.find_last_not_of(' ') - start + 1);
  }
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) break;
    auto start = line.find_first_not_of(' ', colon + 1);
    return start == std::string::npos ? "unknown" : line.substr(start);
  }
  return "unknown";
}

std::string eigen_version() {
  return "eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
         "." + std::to_string(EIGEN_MINOR_VERSION);
}

std::string blas() {
#ifdef STATEX_HAVE_OPENBLAS
  // OpenBLAS picks its kernel from the CPU at load time: the kernel is what makes bits differ.
  return std::string(openblas_get_config()) + "; kernel " + openblas_get_corename();
#else
  return eigen_version() + " GEMM (no BLAS library)";
#endif
}

std::string eigen() {
  return eigen_version() + "; simd " + Eigen::SimdInstructionSetsInUse() +
         "; gemm cache sizes " + std::to_string(Eigen::l1CacheSize()) + "/" +
         std::to_string(Eigen::l2CacheSize()) + "/" + std::to_string(Eigen::l3CacheSize()) +
         (std::string(STATEX_FLAVOUR) == "portable" ? " (pinned)" : " (from cpuid)");
}

std::string openmp() {
  // Which runtime actually answers omp_* calls (libgomp, libomp...): the shared object's name.
  std::string lib = "unknown runtime";
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &info) && info.dli_fname) {
    lib = info.dli_fname;
    auto slash = lib.rfind('/');
    if (slash != std::string::npos) lib = lib.substr(slash + 1);
  }
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  return lib + ", _OPENMP " + std::to_string(_OPENMP) + ", OMP_WAIT_POLICY " +
         (wait ? wait : "unset");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> Provenance::fields() const {
  return {{"flavour", flavour}, {"cxx_flags", cxx_flags}, {"build_isa", build_isa},
          {"cpu_model", cpu_model}, {"cpu_isa", cpu_isa},   {"blas", blas},
          {"eigen", eigen},       {"openmp", openmp},       {"libc", libc}};
}

void pin_portable_math() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::string(STATEX_FLAVOUR) == "portable")
      Eigen::setCpuCacheSizes(kPinnedL1, kPinnedL2, kPinnedL3);
  });
}

const Provenance& provenance() {
  static const Provenance p = [] {
    pin_portable_math();
    Provenance r;
    r.flavour = STATEX_FLAVOUR;
    r.cxx_flags = STATEX_CXX_FLAGS;
    r.build_isa = statex::build_isa();
    r.cpu_model = cpu_model_name();
    r.cpu_isa = statex::cpu_isa();
    r.blas = statex::blas();
    r.eigen = statex::eigen();
    r.openmp = statex::openmp();
    r.libc = std::string("glibc ") + gnu_get_libc_version();
    return r;
  }();
  return p;
}

}  // namespace statex
