// Start-of-run header: see run_header.h.
#include "sim/train/run_header.h"

#include <string>

namespace statex {

void print_run_header(const RunRecord& rec, const TrainerOptions& opt, int64_t start_step,
                      std::FILE* out) {
  auto cfg = [&](const char* k) {
    auto it = rec.config.find(k);
    return it == rec.config.end() ? std::string("?") : it->second;
  };
  const int64_t state = rec.state.total_state_scalars();
  std::fprintf(out, "statex train: %s, L=%s, D=%s, V=%s | %lld params | state %lld scalars "
                    "(%lld bytes) | device %s, %d threads\n",
               rec.model.c_str(), cfg("model.n_layers").c_str(), cfg("model.d_model").c_str(),
               cfg("model.vocab_size").c_str(), (long long)rec.n_params, (long long)state,
               (long long)state * 4, rec.device.c_str(), rec.omp_threads);
  std::fprintf(out, "statex train: %s %s steps | results %s | checkpoint %s\n",
               start_step > 0 ? ("resuming at step " + std::to_string(start_step) + " of").c_str()
                              : "training",
               cfg("train.steps").c_str(), opt.out_path.empty() ? "(none)" : opt.out_path.c_str(),
               opt.checkpoint_out.empty() ? "(none)" : opt.checkpoint_out.c_str());
  if (rec.has_valid) {
    std::string segs;
    for (const std::string& s : rec.valid_segments) segs += (segs.empty() ? "" : ",") + s;
    std::fprintf(out, "statex train: validation split %s (seed space disjoint from train and "
                      "test), evaluated beside the test set%s\n",
                 segs.c_str(), cfg("train.target_accuracy") != "0"
                                   ? "; the accuracy target is judged on it" : "");
  }
}

}  // namespace statex
