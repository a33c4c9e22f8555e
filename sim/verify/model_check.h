#pragma once
// Whole-model check behind `statex verify` (issue 5): the same model, from the same init, trained
// a few steps on the same batches on both backends; compares the loss curve and the final
// parameters. One Row per model family (group "model").
#include <vector>

#include "sim/verify/verify.h"

namespace statex::verify {

std::vector<Row> model_rows(Backend& cpu, Backend& gpu, unsigned seed, int steps = 5);

}  // namespace statex::verify
