#include "sim/train/evaluate.h"

#include <vector>

namespace statex {

EvalPoint evaluate(Model& model, const Dataset& test, int batch_size, DeviceBatchBuffer& buf,
                   int64_t step) {
  EvalAccumulator acc(test.num_segments(), default_gap_edges(test.max_seq_len()));
  Backend& be = model.backend();
  std::vector<int> preds;
  std::vector<float> losses;
  for (long first = 0; first < test.size(); first += batch_size) {
    MqarBatch b = make_batch(test, first, batch_size, /*wrap=*/false);
    DeviceBatch db = buf.upload(b);
    model.forward(db);
    preds.resize(db.M);
    losses.resize(db.M);
    be.to_host(preds.data(), model.label_preds(), db.M * sizeof(int));
    be.to_host(losses.data(), model.label_losses(), db.M * sizeof(float));
    acc.add(b, preds.data(), losses.data());
  }
  return acc.result(step);
}

}  // namespace statex
