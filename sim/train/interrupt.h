#pragma once
// SIGTERM / SIGINT end a training run cleanly (docs/exit_codes.md, "Signals"): the handler only
// sets a flag, which the trainer checks once per step; it then writes a final checkpoint (when
// --checkpoint-out was given), marks the results `interrupted` with the step, and exits with
// kExitInterrupted. A second signal of either kind kills the process at once (default action).
namespace statex {

// Exit code of an interrupted run (EX_TEMPFAIL of sysexits.h: "try again later"); the Slurm
// backend requeues a trial that exits with it.
constexpr int kExitInterrupted = 75;

// Installs the handlers (idempotent).
void install_interrupt_handlers();
// 0, or the number of the first signal received since install_interrupt_handlers().
int pending_interrupt();
// "SIGTERM", "SIGINT", or "signal N".
const char* signal_name(int sig);

}  // namespace statex
