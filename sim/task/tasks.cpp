// Task variants (layouts in tasks.h, semantics in docs/tasks.md). Each task builds its one-pass
// context and its K queries; the shared code repeats the context, places the queries by the gap
// race and fills the rest of the query region.
#include "sim/task/tasks.h"

#include <algorithm>
#include <cmath>

#include "sim/core/labels.h"

namespace statex {
namespace {

// One query: its tokens (the last one is labelled), the value to emit and where the key's last
// token sits in the one-pass context (for the distance).
struct Query {
  int tokens[2];
  int num_tokens;
  int value;
  int key_pos;  // position in [0, C1) of the key token matching the query's last token
  int query_class;
};

// Plain MQAR: k1 v1 ... kK vK. Keys K distinct from [1, V/2), values K distinct from [V/2, V).
void mqar_context(int K, int V, Xoshiro256& rng, int* ctx, Query* q) {
  const int half = V / 2;
  std::vector<int> keys(K), values(K);
  sample_distinct(rng, half - 1, K, keys.data());
  sample_distinct(rng, V - half, K, values.data());
  for (int i = 0; i < K; ++i) {
    ctx[2 * i] = keys[i] + 1;
    ctx[2 * i + 1] = values[i] + half;
    q[i] = Query{{keys[i] + 1, 0}, 1, values[i] + half, 2 * i, kNoQueryClass};
  }
}

// Forgetting MQAR: the K pairs of plain MQAR, then U updates: U distinct keys (random subset in
// random order) with a new value uniform over the values other than the key's old one.
void forgetting_context(int K, int U, int V, Xoshiro256& rng, int* ctx, Query* q) {
  mqar_context(K, V, rng, ctx, q);
  for (int i = 0; i < K; ++i) q[i].query_class = kForgettingKept;
  const int half = V / 2;
  std::vector<int> which(U);
  sample_distinct(rng, K, U, which.data());
  for (int j = 0; j < U; ++j) {
    Query& k = q[which[j]];
    const int old = k.value - half;
    int v = rng.below(V - half - 1);
    if (v >= old) ++v;  // skip the old value
    ctx[2 * K + 2 * j] = k.tokens[0];
    ctx[2 * K + 2 * j + 1] = v + half;
    k.value = v + half;
    k.key_pos = 2 * K + 2 * j;
    k.query_class = kForgettingUpdated;
  }
}

// Compositional MQAR: g first tokens from [1, V/3), g second tokens from [V/3, 2V/3); the K
// compound keys are K distinct cells of the g x g grid (all of it when K = g^2, Zoology), in
// random order; values K distinct from [2V/3, V). Context triples a b v.
void compositional_context(int K, int g, int V, Xoshiro256& rng, int* ctx, Query* q) {
  const int third = V / 3;
  std::vector<int> first(g), second(g), cells(K), values(K);
  sample_distinct(rng, third - 1, g, first.data());
  sample_distinct(rng, third, g, second.data());
  sample_distinct(rng, g * g, K, cells.data());
  sample_distinct(rng, V - 2 * third, K, values.data());
  std::vector<int> rows_used(g, 0);
  for (int i = 0; i < K; ++i) ++rows_used[cells[i] / g];
  for (int i = 0; i < K; ++i) {
    const int a = first[cells[i] / g] + 1, b = second[cells[i] % g] + third;
    const int v = values[i] + 2 * third;
    ctx[3 * i] = a;
    ctx[3 * i + 1] = b;
    ctx[3 * i + 2] = v;
    q[i] = Query{{a, b}, 2, v, 3 * i + 1,
                 rows_used[cells[i] / g] > 1 ? kCompositionalSharedFirst
                                             : kCompositionalUniqueFirst};
  }
}

int isqrt(int k) {
  int g = static_cast<int>(std::lround(std::sqrt(static_cast<double>(k))));
  while (g * g > k) --g;
  while ((g + 1) * (g + 1) <= k) ++g;
  return g;
}

}  // namespace

const char* query_class_name(int c) {
  switch (c) {
    case kForgettingKept: return "forgetting_kept";
    case kForgettingUpdated: return "forgetting_updated";
    case kCompositionalSharedFirst: return "compositional_shared_first";
    case kCompositionalUniqueFirst: return "compositional_unique_first";
    default: return "none";
  }
}

const char* task_name(Task task) {
  switch (task) {
    case Task::forgetting: return "forgetting";
    case Task::compositional: return "compositional";
    default: return "mqar";
  }
}

int context_length(const MqarSegment& s) {
  switch (s.task) {
    case Task::forgetting: return 2 * (s.num_kv + s.updates);
    case Task::compositional: return 3 * s.num_kv;
    default: return 2 * s.num_kv;
  }
}

int query_slot(const MqarSegment& s) { return s.task == Task::compositional ? 3 : 2; }

int query_space(const MqarSegment& s) {
  return (s.seq_len - s.passes * context_length(s)) / query_slot(s);
}

int grid_side(const MqarSegment& s) {
  if (s.task != Task::compositional) return 0;
  return s.grid > 0 ? s.grid : isqrt(s.num_kv);
}

std::string format_segment(const MqarSegment& s) {
  std::string out = s.task == Task::mqar ? "" : std::string(task_name(s.task)) + ":";
  out += std::to_string(s.seq_len) + ":" + std::to_string(s.num_kv) + ":" + std::to_string(s.count);
  if (s.task == Task::forgetting) out += ":updates=" + std::to_string(s.updates);
  if (s.passes != 1) out += ":passes=" + std::to_string(s.passes);
  if (s.task == Task::compositional && s.grid > 0) out += ":grid=" + std::to_string(s.grid);
  return out;
}

void validate_segment(const MqarSegment& seg, int vocab_size, const std::string& option,
                      int position) {
  const std::string where = option + ": segment " + std::to_string(position) + " (" +
                            format_segment(seg) + ")";
  const int T = seg.seq_len, K = seg.num_kv, V = vocab_size, p = seg.passes;
  auto fail = [&](const std::string& why) { throw ConfigError(where + " " + why); };
  if (seg.count < 1)
    fail("has count " + std::to_string(seg.count) + "; each segment needs count >= 1 examples");
  if (K < 1) fail("has K=" + std::to_string(K) + "; K (key-value pairs) must be >= 1");
  if (T < 1 || T % 2 != 0)
    fail("has T=" + std::to_string(T) + "; T must be a positive even length (Zoology's query "
         "region is made of two-token slots), e.g. " + std::to_string(T < 2 ? 64 : T + 1));
  if (p < 1) fail("has passes=" + std::to_string(p) + "; passes must be >= 1 (1 = no repetition)");
  if (seg.task != Task::forgetting && seg.updates != 0)
    fail("sets updates=" + std::to_string(seg.updates) + ", which only the forgetting task takes; "
         "write forgetting:T:K:count:updates=U");
  if (seg.task != Task::compositional && seg.grid != 0)
    fail("sets grid=" + std::to_string(seg.grid) + ", which only the compositional task takes; "
         "write compositional:T:K:count:grid=g");
  if (seg.task == Task::forgetting && (seg.updates < 0 || seg.updates > K))
    fail("has updates=" + std::to_string(seg.updates) + "; the number of reassigned keys must lie "
         "in [0, K=" + std::to_string(K) + "]");
  if (seg.task == Task::compositional) {
    const int g = grid_side(seg);
    if (seg.grid == 0 && g * g != K)
      fail("has K=" + std::to_string(K) + ", not a perfect square: Zoology's compositional grid "
           "needs K = g*g (4, 9, 16, ...); use K=" + std::to_string(g * g) + " or K=" +
           std::to_string((g + 1) * (g + 1)) + ", or give an explicit grid=g with g*g >= K");
    if (seg.grid < 0 || g * g < K)
      fail("has grid=" + std::to_string(seg.grid) + " but a g x g grid holds only " +
           std::to_string(g * g) + " compound keys < K=" + std::to_string(K) + "; raise grid to " +
           "at least " + std::to_string(isqrt(K - 1) + 1));
  }
  // Room: the passes*C1 context plus K query slots.
  const int C1 = context_length(seg), slot = query_slot(seg);
  if (static_cast<long>(p) * C1 + static_cast<long>(slot) * K > T) {
    const long need = static_cast<long>(p) * C1 + static_cast<long>(slot) * K;
    std::string rule = seg.task == Task::forgetting ? "2*(K+updates)*passes + 2*K <= T"
                       : seg.task == Task::compositional ? "3*K*passes + 3*K <= T"
                       : p == 1 ? "4*K <= T" : "2*K*passes + 2*K <= T";
    fail("needs " + rule + " (the context plus room for K queries) = " + std::to_string(need) +
         " tokens; lower K" + (seg.task == Task::forgetting ? ", updates" : "") +
         (p > 1 ? " or passes" : "") + ", or raise T to at least " + std::to_string(need));
  }
  // Vocabulary pools.
  auto pool = [&](int need, int have, const std::string& what, const std::string& range) {
    if (need > have)
      fail("needs " + std::to_string(need) + " distinct " + what + " but model.vocab_size=" +
           std::to_string(V) + " has only " + std::to_string(std::max(have, 0)) + " (" + what +
           " come from " + range + "); raise model.vocab_size or lower K");
  };
  if (seg.task == Task::compositional) {
    const int g = grid_side(seg), third = V / 3;
    pool(g, third - 1, "first key tokens", "[1, V/3)");
    pool(g, third, "second key tokens", "[V/3, 2V/3)");
    pool(K, V - 2 * third, "values", "[2V/3, V)");
  } else {
    pool(K, V / 2 - 1, "keys", "[1, V/2)");
    pool(K, V - V / 2, "values", "[V/2, V)");
    if (seg.task == Task::forgetting && seg.updates > 0)
      pool(2, V - V / 2, "values", "[V/2, V) (an update needs a value other than the old one)");
  }
  if (V <= T)
    fail(": model.vocab_size=" + std::to_string(V) + " must exceed T=" + std::to_string(T) +
         " (Zoology's assert vocab_size > input_seq_len, kept so results stay comparable); raise "
         "model.vocab_size above " + std::to_string(T) + " or shorten T");
}

std::vector<double> inverse_gap_weights(const MqarSegment& seg, float power_a) {
  // p(g) ∝ (g+1)^(a-1); the race needs 1/w = (g+1)^(1-a) (the factor a cancels).
  const int space = std::max(query_space(seg), 0);
  std::vector<double> inv_w(space);
  for (int g = 0; g < space; ++g) inv_w[g] = std::pow(static_cast<double>(g + 1), 1.0 - power_a);
  return inv_w;
}

void generate_example(const MqarSegment& seg, int V, const std::vector<double>& inv_w,
                      bool random_non_queries, Xoshiro256& rng, const ExampleRow& out) {
  const int T = seg.seq_len, K = seg.num_kv, C1 = context_length(seg), slot = query_slot(seg);
  const int C = seg.passes * C1;  // whole context
  std::fill(out.inputs, out.inputs + T, 0);
  std::fill(out.targets, out.targets + T, kIgnoreLabel);
  if (out.distance) std::fill(out.distance, out.distance + T, -1);
  if (out.query_class) std::fill(out.query_class, out.query_class + T, kNoQueryClass);

  std::vector<Query> q(K);
  switch (seg.task) {
    case Task::forgetting: forgetting_context(K, seg.updates, V, rng, out.inputs, q.data()); break;
    case Task::compositional:
      compositional_context(K, grid_side(seg), V, rng, out.inputs, q.data());
      break;
    default: mqar_context(K, V, rng, out.inputs, q.data());
  }
  for (int r = 1; r < seg.passes; ++r) std::copy_n(out.inputs, C1, out.inputs + r * C1);

  // K slots without replacement, successive draws ∝ p(g): exponential race. Slot g gets arrival
  // time E_g = -log(u_g) / w_g ~ Exp(w_g); sorting by arrival gives exactly the successive
  // weighted draw order (memorylessness), so the i-th arrival is draw i = the slot of key i.
  const int space = static_cast<int>(inv_w.size());
  std::vector<std::pair<double, int>> race(space);
  for (int g = 0; g < space; ++g) race[g] = {-std::log(rng.open01()) * inv_w[g], g};
  std::partial_sort(race.begin(), race.begin() + K, race.end());
  const int last_pass = (seg.passes - 1) * C1;
  for (int i = 0; i < K; ++i) {
    const int start = C + slot * race[i].second;
    for (int j = 0; j < q[i].num_tokens; ++j) out.inputs[start + j] = q[i].tokens[j];
    const int pos = start + q[i].num_tokens - 1;
    out.targets[pos] = q[i].value;
    if (out.distance) out.distance[pos] = pos - (last_pass + q[i].key_pos);
    if (out.query_class) out.query_class[pos] = q[i].query_class;
  }

  // Zoology: every remaining 0 gets a uniform token from [0, V) (the context has no zeros).
  if (random_non_queries)
    for (int t = C; t < T; ++t)
      if (out.inputs[t] == 0) out.inputs[t] = rng.below(V);
}

}  // namespace statex
