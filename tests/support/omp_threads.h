#pragma once
// The OpenMP thread count for one scope: set on construction (and by set()), the previous count
// put back on destruction, also when a failed ASSERT leaves the test early. Used by the tests that
// check a result does not depend on the thread count.
#include <omp.h>

namespace statex::testing {

class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

  void set(int n) { omp_set_num_threads(n); }

 private:
  int saved_;
};

}  // namespace statex::testing
