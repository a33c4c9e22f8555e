#pragma once
// Per-timestep recurrent SSD (Mamba2 scan): the reference the chunked fast path
// (CpuBackend::ssd_forward / ssd_backward, sim/ops/cpu/ssd.cpp) is tested against.
// Same arguments and semantics as the Backend methods (sim/core/ops.def):
//   per (b, head h, group g = h / (H/G)), A_h = -exp(A_log[h]), state h_0 = 0 (P×N):
//   h_t = exp(dt_t A_h) h_{t-1} + dt_t x_t ⊗ B_t,   y_t = h_t C_t
// x, y [B, T, H, P]; dt [B, T, H]; Bm, Cm [B, T, G, N]; A_log [H]; final_state [B, H, P, N]
// or nullptr. Backward runs the recurrence in reverse time and ACCUMULATES (+=) into every
// non-null gradient; dfinal_state nullptr means a zero upstream gradient on the final state.
// Arithmetic is in double (inputs and outputs are float), so it is a sharper reference than
// the fp32 fast path. Parallel over batch elements only: deterministic, no races.
namespace statex::reference {

void ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                 const float* A_log, const float* Bm, const float* Cm, int B, int T, int H, int P,
                 int G, int N);

void ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm, const float* dy,
                  const float* dfinal_state, const float* x, const float* dt, const float* A_log,
                  const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N);

}  // namespace statex::reference
