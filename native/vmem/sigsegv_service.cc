// The SIGSEGV fault service, for systems where userfaultfd is not allowed.
//
// The faulting thread serves its own fault inside the signal handler, so everything here is
// async-signal-safe: system calls, atomics, FutexMutex, memcpy; no malloc, no stdio, no
// exceptions. The handler is installed once per process with SA_SIGINFO|SA_ONSTACK and
// remembers the handler it replaced (Node's, V8's, ASan's...): any fault that is not on a
// Sigsegv region goes there, so an unrelated segfault behaves exactly as before.
//
// Which access faulted: a unit that is not loaded is PROT_NONE, a loaded unit of a clean
// block is PROT_READ, a loaded unit of a dirty block is read-write. So a fault on an unloaded
// unit is a load (a write, when the CPU says so, also dirties the block at once) and a fault
// on a loaded unit of a clean block is a write. Anything else is a fault another thread has
// already served; we re-apply the protection (self-healing) and return.
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
int g_memFd = -1;           // /proc/self/mem, for atomic fills
bool g_memWritable = false;  // probed once at start

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

bool cpuSaysWrite(void* ctx) {
#if defined(__x86_64__)
  // Page-fault error code bit 1: the access was a write.
  const ucontext_t* uc = static_cast<const ucontext_t*>(ctx);
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
  (void)ctx;
  return false;  // the write refaults on the PROT_READ unit and is seen then
#endif
}

int reapplyProtection(RegionImpl* R, uint64_t u, uint64_t b) {
  int prot = R->blocks[b].dirty ? PROT_READ | PROT_WRITE : PROT_READ;
  return mprotect(R->unitAddr(u), R->unitBytes, prot) == 0 ? 0 : errno;
}

// Returns 0, or an errno when the fault could not be served.
int serveLocked(RegionImpl* R, uint64_t u, bool write) {
  const uint64_t b = R->blockOfUnit(u);
  if (!unitIsLoaded(R, u)) {
    uint64_t w0, w1;
    return loadWindowLocked(R, u, write, &w0, &w1);
  }
  if (!R->blocks[b].dirty) {
    markDirtyLocked(R, b);
    return 0;
  }
  R->st.spurious++;
  return reapplyProtection(R, u, b);
}

bool serve(RegionImpl* R, uintptr_t addr, bool write) {
  const uint64_t u = (addr - reinterpret_cast<uintptr_t>(R->base)) / R->unitBytes;
  if (R->budget && !unitIsLoaded(R, u))
    budgetMakeRoom(R->budget, R->faultBytes);
  FutexLock g(R->mu);
  int e = serveLocked(R, u, write);
  if (e == ENOMEM) {
    // Most likely vm.max_map_count: every loaded run of units is a kernel VMA. Dropping
    // the region's clean blocks merges them back; then try once more.
    uint64_t n;
    evictLocked(R, UINT64_MAX, &n);
    e = serveLocked(R, u, write);
  }
  return e == 0;
}

void onSegv(int sig, siginfo_t* si, void* ctx) {
  const int savedErrno = errno;
  int slot = -1;
  RegionImpl* R = nullptr;
  if (si->si_code > 0)  // a real fault, not kill()/raise()
    R = registryAcquire(reinterpret_cast<uintptr_t>(si->si_addr), &slot);
  if (!R || R->mode != FaultMode::Sigsegv) {
    if (R) registryRelease(slot);
    errno = savedErrno;
    chain(sig, si, ctx);
    return;
  }
  bool ok = serve(R, reinterpret_cast<uintptr_t>(si->si_addr), cpuSaysWrite(ctx));
  registryRelease(slot);
  if (!ok) {
    writeStderr("txarray vmem: cannot serve a page fault (see the region's error); "
                "terminating\n");
    restoreDefaultAndReturn(sig, si);
  }
  errno = savedErrno;
}

bool probeProcSelfMem(int fd) {
  const size_t len = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  const uint8_t v = 0x5a;
  bool ok = pwrite(fd, &v, 1, static_cast<off_t>(reinterpret_cast<uintptr_t>(p))) == 1 &&
            mprotect(p, len, PROT_READ) == 0 && *static_cast<volatile uint8_t*>(p) == v;
  munmap(p, len);
  return ok;
}

void openProcSelfMem() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_memFd = ::open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    g_memWritable = g_memFd >= 0 && probeProcSelfMem(g_memFd);
    // For tests: take the mprotect+memcpy fallback as where /proc/self/mem is read-only.
    const char* off = getenv("TXARRAY_VMEM_NO_PROC_MEM");
    if (off && *off && strcmp(off, "0") != 0) g_memWritable = false;
  });
}

}  // namespace

bool procSelfMemWritable() {
  openProcSelfMem();
  return g_memWritable;
}

int sigsegvServiceStart() {
  if (g_installed.load()) return 0;
  std::lock_guard<std::mutex> g(g_installMu);
  if (g_installed.load()) return 0;
  openProcSelfMem();
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

int sigsegvFill(RegionImpl* R, uint8_t* dst, uint64_t len, const uint8_t* src,
                uint64_t avail, bool writable) {
  FillSegment seg{0, avail, src};
  return sigsegvFillSegments(R, dst, len, &seg, avail ? 1 : 0, writable);
}

int sigsegvFillSegments(RegionImpl* R, uint8_t* dst, uint64_t len, const FillSegment* segs,
                        int count, bool writable) {
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  int e = 0;
  if (count > 0 && !g_memWritable && mprotect(dst, len, PROT_READ | PROT_WRITE) != 0) e = errno;
  for (int i = 0; i < count && !e; i++) {
    const FillSegment& s = segs[i];
    if (!g_memWritable) {
      memcpy(dst + s.at, s.src, s.len);
      continue;
    }
    // The kernel writes into the PROT_NONE unit for us (FOLL_FORCE): no other thread can
    // see the unit before it is complete.
    uint64_t done = 0;
    while (done < s.len) {
      ssize_t n = pwrite(g_memFd, s.src + done, s.len - done,
                         static_cast<off_t>(reinterpret_cast<uintptr_t>(dst + s.at + done)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        e = n < 0 ? errno : EIO;
        break;
      }
      done += static_cast<uint64_t>(n);
    }
  }
  if (!e && mprotect(dst, len, prot) != 0) e = errno;
  if (e) {
    // Keep the invariant "not loaded = PROT_NONE and unpopulated".
    mprotect(dst, len, PROT_NONE);
    madvise(dst, len, MADV_DONTNEED);
  }
  (void)R;
  return e;
}

}  // namespace vmem
}  // namespace txa
