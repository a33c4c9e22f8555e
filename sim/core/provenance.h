#pragma once
// What a number depends on beyond its config: the machine, the build and the math libraries.
// Recorded in every results file and checkpoint (/build group, docs/results_format.md) so that
// two runs that differ in their last bits can be told apart (docs/reproducibility.md).
#include <string>
#include <utility>
#include <vector>

namespace statex {

struct Provenance {
  std::string flavour;      // "portable" | "native" (docs/reproducibility.md)
  std::string cxx_flags;    // every flag the C++ sources were compiled with, -march included
  std::string build_isa;    // the SIMD the binary was compiled for, e.g. "avx2 fma"
  std::string cpu_model;    // /proc/cpuinfo "model name"
  std::string cpu_isa;      // the SIMD this CPU offers, e.g. "avx2 fma avx512f"
  std::string blas;         // the GEMM library, its version and the kernel it selected
  std::string eigen;        // Eigen version, SIMD in use and its GEMM cache sizes
  std::string openmp;       // runtime library, spec version, OMP_WAIT_POLICY
  std::string libc;         // glibc version (its libm picks exp / log variants by CPU)

  // (name, value) in a fixed order: the /build attribute names.
  std::vector<std::pair<std::string, std::string>> fields() const;
};

// Of this process; computed once (reads /proc/cpuinfo).
const Provenance& provenance();

// Pins what the portable flavour must not take from the CPU at run time (Eigen's GEMM blocking
// sizes, which it otherwise derives from the cache sizes). Called once before any GEMM; a no-op
// in the native flavour.
void pin_portable_math();

}  // namespace statex
