// The SIGSEGV fault service, for systems where userfaultfd is not allowed, and the guard
// of Uffd regions while a placeholder is re-created.
//
// A Sigsegv region's placeholders are PROT_NONE: the faulting thread maps the window
// around the fault itself, inside the handler (serveFault), and returns to retry the
// access. Everything here is async-signal-safe: system calls, atomics, FutexMutex, memcpy;
// no malloc, no stdio, no exceptions. The handler is installed once per process with
// SA_SIGINFO|SA_ONSTACK and remembers the handler it replaced (Node's, V8's, ASan's...):
// a fault outside our regions goes there, so an unrelated segfault behaves as before.
// System calls on PROT_NONE pages fail with EFAULT (the kernel raises no signal for them).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

struct sigaction g_prev;  // the handler we replaced; written once, before ours is live
std::atomic<bool> g_installed{false};
std::mutex g_installMu;

void writeStderr(const char* s) {
  ssize_t r = write(2, s, strlen(s));
  (void)r;  // nothing to do if stderr is gone
}

void restoreDefaultAndReturn(int sig, const siginfo_t* si) {
  struct sigaction d;
  memset(&d, 0, sizeof d);
  d.sa_handler = SIG_DFL;
  sigemptyset(&d.sa_mask);
  sigaction(sig, &d, nullptr);
  // A real fault re-executes the instruction on return and dies of the default action. A
  // signal sent with kill() must be raised again (it stays pending until we return).
  if (si->si_code <= 0) raise(sig);
}

void chain(int sig, siginfo_t* si, void* ctx) {
  if (g_prev.sa_flags & SA_SIGINFO) {
    if (g_prev.sa_sigaction) {
      g_prev.sa_sigaction(sig, si, ctx);
      return;
    }
  } else if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
    g_prev.sa_handler(sig);
    return;
  }
  // SIG_IGN cannot ignore a real fault (the kernel would kill anyway): treat as default.
  restoreDefaultAndReturn(sig, si);
}

void onSegv(int sig, siginfo_t* si, void* ctx) {
  const int savedErrno = errno;
  int slot = -1;
  RegionImpl* R = nullptr;
  if (si->si_code > 0)  // a real fault, not kill()/raise()
    R = registryAcquire(reinterpret_cast<uintptr_t>(si->si_addr), &slot);
  if (!R) {
    errno = savedErrno;
    chain(sig, si, ctx);
    return;
  }
  bool served = true;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(si->si_addr);
  if (R->mode == FaultMode::Sigsegv) {
    // A write into a shut scan window opens it, or drops it (the retry faults again, on a
    // placeholder); anything else is a fault on a placeholder. Only the verdict of the
    // locked step counts: the block may be evicted or spilled by another thread before
    // this one retries the access, which then faults again.
    const ScanWrite w = serveScanWriteFault(R, addr);
    uintptr_t lo, hi;
    if (w == ScanWrite::NotShut) served = serveFault(R, addr, false, &lo, &hi, nullptr);
    else served = w != ScanWrite::Failed;
  } else {
    // A Uffd region's block is PROT_NONE only while a thread holding Region::mu re-creates
    // its placeholder (block_mapping.cc), and read-only only while a thread holding it
    // spills the block (spill.cc) or evicts it (holdStoresLocked): wait for that thread,
    // then retry the access.
    FutexLock g(R->mu);
  }
  registryRelease(slot);
  if (!served) {
    writeStderr("txarray vmem: cannot map a block of a view, nor make it writable (see the region's error); terminating\n");
    restoreDefaultAndReturn(sig, si);
  }
  errno = savedErrno;
}

}  // namespace

int sigsegvServiceStart() {
  if (g_installed.load()) return 0;
  std::lock_guard<std::mutex> g(g_installMu);
  if (g_installed.load()) return 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = onSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, nullptr, &g_prev) != 0) return errno;
  if (sigaction(SIGSEGV, &sa, nullptr) != 0) return errno;
  g_installed.store(true);
  return 0;
}

}  // namespace vmem
}  // namespace txa
