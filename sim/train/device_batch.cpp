#include "sim/train/device_batch.h"

namespace statex {

DeviceBatch DeviceBatchBuffer::upload(const MqarBatch& b) {
  const size_t ntok = b.inputs.size(), nlab = b.label_row.size();
  if (ntok > tok_cap_ || nlab > lab_cap_) {
    arena_.release();
    tok_cap_ = std::max(ntok, tok_cap_);
    lab_cap_ = std::max(nlab, lab_cap_);
    tokens_ = arena_.ints(tok_cap_);
    rows_ = arena_.ints(lab_cap_);
    targets_ = arena_.ints(lab_cap_);
  }
  be_.to_device(tokens_, b.inputs.data(), ntok * sizeof(int));
  be_.to_device(rows_, b.label_row.data(), nlab * sizeof(int));
  be_.to_device(targets_, b.label_target.data(), nlab * sizeof(int));
  return DeviceBatch{b.B, b.T, tokens_, int(nlab), rows_, targets_};
}

}  // namespace statex
