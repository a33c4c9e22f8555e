#pragma once
// The associative-recall task variants (semantics in docs/tasks.md, docs/design.md §2): plain
// MQAR, forgetting MQAR and compositional MQAR, each optionally with a multi-pass context. One
// function writes one example of any segment from its PRNG stream; MqarDataset (mqar.h) lays
// segments out and hashes (seed, split, segment, index) into that stream.
//
// Layout of every task: the one-pass context (C1 tokens) written `passes` times, then the query
// region of space = (T - passes*C1) / slot query slots (slot = 2 tokens, compositional 3). K
// distinct slots are drawn by the power law p(g) ∝ (g+1)^(a-1) (successive draws without
// replacement, draw i = the query of key i). Only the last token of a query is labelled, with the
// value the model must emit next. distance = label position - position of the same token in the
// key's latest occurrence in the last pass of the context.
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/task/rng.h"

namespace statex {

// Query classes of the per-task metrics (docs/tasks.md, "Metrics"). Plain MQAR queries have none.
enum QueryClass : int {
  kNoQueryClass = -1,
  kForgettingKept = 0,             // forgetting: the key kept its first value
  kForgettingUpdated = 1,          // forgetting: the key was reassigned; label = the new value
  kCompositionalSharedFirst = 2,   // compositional: another key has the same first token
  kCompositionalUniqueFirst = 3,   // compositional: no other key has this first token
  kNumQueryClasses = 4
};
const char* query_class_name(int query_class);  // "forgetting_kept", ...

const char* task_name(Task task);  // "mqar" | "forgetting" | "compositional"

// One example's rows, each [T]; distance and query_class may be nullptr.
struct ExampleRow {
  int* inputs;
  int* targets;      // kIgnoreLabel where unlabelled
  int* distance;     // -1 where unlabelled
  int* query_class;  // QueryClass at labelled positions, -1 elsewhere
};

int context_length(const MqarSegment& seg);  // C1: one pass of the key-value context (tokens)
int query_slot(const MqarSegment& seg);      // tokens per query slot: 2, compositional 3
int query_space(const MqarSegment& seg);     // query slots after the passes*C1 context
int grid_side(const MqarSegment& seg);       // compositional grid side g (0 for other tasks)

// "[task:]T:K:count[:updates=U][:passes=p][:grid=g]"; plain one-pass MQAR stays "T:K:count".
std::string format_segment(const MqarSegment& seg);

// Throws ConfigError naming `option` (mqar.train / mqar.test), the segment's 1-based `position`
// and model.vocab_size where the vocabulary is the problem.
void validate_segment(const MqarSegment& seg, int vocab_size, const std::string& option,
                      int position = 1);

// 1 / p(g) up to a constant for g in [0, query_space): the weights of the gap race.
std::vector<double> inverse_gap_weights(const MqarSegment& seg, float power_a);

// Writes one example of `seg` (length seg.seq_len) from `rng`. Pure: the same stream gives the
// same example. inv_gap_w from inverse_gap_weights(seg, power_a).
void generate_example(const MqarSegment& seg, int vocab_size, const std::vector<double>& inv_gap_w,
                      bool random_non_queries, Xoshiro256& rng, const ExampleRow& out);

}  // namespace statex
