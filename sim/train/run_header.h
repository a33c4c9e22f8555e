#pragma once
// The start-of-run header on stderr: model, parameter count, state size, output paths.
#include <cstdint>
#include <cstdio>

#include "sim/io/run_record.h"
#include "sim/train/trainer.h"

namespace statex {

void print_run_header(const RunRecord& rec, const TrainerOptions& opt, int64_t start_step,
                      std::FILE* out);

}  // namespace statex
