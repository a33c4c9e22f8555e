#pragma once
// Per-timestep gated delta rule: the reference the chunked CpuBackend::gated_delta_* fast path
// is tested against (docs/design.md §1 "Gated DeltaNet"; semantics of fla's
// naive_recurrent_gated_delta_rule). Same argument convention as Backend::gated_delta_forward /
// gated_delta_backward, minus the chunk length:
//   per (b, h), S_0 = 0, a_t = exp(g_t):
//     S_t = a_t S_{t-1} + beta_t k_t (v_t - a_t S_{t-1}^T k_t)^T,   o_t = (scale q_t) S_t
//   q, k [B, T, H, K]; v, o [B, T, H, V]; g, beta [B, T, H]; final_state [B, H, K, V] or nullptr.
// Host memory, single-threaded, double accumulators; meant for tests, not for speed.
namespace statex::reference {

void gated_delta_forward(float* o, float* final_state, const float* q, const float* k,
                         const float* v, const float* g, const float* beta, int B, int T, int H,
                         int K, int V, float scale);

// Backprop through the recurrence in reverse time. ACCUMULATES (+=) into dq, dk, dv, dg, dbeta
// (each may be nullptr). dfinal_state [B, H, K, V] may be nullptr (zero upstream gradient).
void gated_delta_backward(float* dq, float* dk, float* dv, float* dg, float* dbeta,
                          const float* dout, const float* dfinal_state, const float* q,
                          const float* k, const float* v, const float* g, const float* beta, int B,
                          int T, int H, int K, int V, float scale);

}  // namespace statex::reference
