#pragma once
// Evaluation of a model on a whole test set (generated or from a token file), batch by batch.
#include "sim/io/run_record.h"
#include "sim/model/model.h"
#include "sim/task/metrics.h"
#include "sim/task/mqar.h"
#include "sim/train/device_batch.h"

namespace statex {

EvalPoint evaluate(Model& model, const Dataset& test, int batch_size, DeviceBatchBuffer& buf,
                   int64_t step);

}  // namespace statex
