#pragma once
// Copies an MqarBatch (host) into backend memory as a DeviceBatch for the model.
#include "sim/model/arena.h"
#include "sim/model/model.h"
#include "sim/task/dataset.h"

namespace statex {

class DeviceBatchBuffer {
 public:
  explicit DeviceBatchBuffer(Backend& be) : be_(be), arena_(be) {}
  DeviceBatch upload(const MqarBatch& b);

 private:
  Backend& be_;
  Arena arena_;
  size_t tok_cap_ = 0, lab_cap_ = 0;
  int* tokens_ = nullptr;
  int* rows_ = nullptr;
  int* targets_ = nullptr;
};

}  // namespace statex
