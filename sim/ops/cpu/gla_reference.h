#pragma once
// Per-timestep recurrent GLA: the reference the chunked CpuBackend::gla_* fast path is tested
// against (docs/design.md §1, semantics of fla's GatedLinearAttention / fused_recurrent).
// Same argument convention as Backend::gla_forward / gla_backward, minus the chunk length:
//   per (b, h): S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t,  o_t = (scale q_t) S_t,  S_0 = 0.
//   q, k, gk [B, T, H, K]; v, o [B, T, H, V]; final_state [B, H, K, V] (nullptr = not wanted).
// Host memory, single-threaded, double accumulators; meant for tests, not for speed.
namespace statex::reference {

void gla_forward(float* o, float* final_state, const float* q, const float* k, const float* v,
                 const float* gk, int B, int T, int H, int K, int V, float scale);

// Backprop through the recurrence in reverse time. ACCUMULATES (+=) into dq, dk, dv, dgk
// (each may be nullptr). dfinal_state [B, H, K, V] may be nullptr (zero upstream gradient).
void gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                  const float* dfinal_state, const float* q, const float* k, const float* v,
                  const float* gk, int B, int T, int H, int K, int V, float scale);

}  // namespace statex::reference
