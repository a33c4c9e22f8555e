// Signal flag for clean interruption: see interrupt.h.
#include "sim/train/interrupt.h"

#include <csignal>
#include <cstdio>
#include <cstring>

namespace statex {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) {
  if (g_signal == 0) {
    g_signal = sig;
    return;
  }
  std::signal(sig, SIG_DFL);  // second signal: give up immediately
  std::raise(sig);
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking I/O in the step carries on; the flag is read after it
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

int pending_interrupt() { return g_signal; }

const char* signal_name(int sig) {
  if (sig == SIGTERM) return "SIGTERM";
  if (sig == SIGINT) return "SIGINT";
  static char buf[32];
  std::snprintf(buf, sizeof buf, "signal %d", sig);
  return buf;
}

}  // namespace statex
