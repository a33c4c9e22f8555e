#pragma once
// Naive O(T^2) causal softmax attention: the reference the blocked CpuBackend::attention_* fast
// path is tested against (docs/design.md §1 "Softmax attention"). Per (b, h):
//   S = scale q k^T [T, T] with S[t, s] = -inf for s > t,  P = softmax_rows(S),  o = P v.
// q, k, v, o [B, T, H, Dh]; lse [B, H, T] = log sum_s exp(S[t, s]) (nullptr = not wanted).
// Host memory, single-threaded, the whole T x T matrix in double; meant for tests, not speed.
namespace statex::reference {

void attention_forward(float* o, float* lse, const float* q, const float* k, const float* v, int B,
                       int T, int H, int Dh, float scale);

// ACCUMULATES (+=) into dq, dk, dv (each may be nullptr); dout [B, T, H, Dh].
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, int B, int T, int H, int Dh, float scale);

}  // namespace statex::reference
