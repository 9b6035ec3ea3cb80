// The userfaultfd fault service: one process-wide thread serving every Uffd region.
//
// A region's placeholders are registered for MISSING faults. The thread reads a fault
// message, finds the region by address (registry), maps the window around the fault
// (serveFault: the new mappings replace the registered placeholder, so later touches never
// come here) and wakes the waiting threads with UFFDIO_WAKE. A message for a block that is
// already mapped (two threads faulted on it) is only woken. Unknown addresses (a region
// closed meanwhile) are woken and forgotten. The thread lives until the process exits.
//
// After serving, the thread busy-polls for a short while before sleeping: faults come in
// bursts, and a sleep/wake-up across CPUs costs tens of µs (TXARRAY_UFFD_SPIN_US, default
// 50; 0 disables).
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

#include "internal.h"
#include "linux_uapi.h"

namespace txa {
namespace vmem {
namespace {

// A new non-blocking userfaultfd. userModeOnly: restricted to faults taken in user mode
// (what an unprivileged process may open when vm.unprivileged_userfaultfd is 0); faults in
// system calls then fail with EFAULT. /dev/userfaultfd first: it is how an administrator
// grants full userfaultfd to a user.
int openUffd(bool userModeOnly) {
  int flags = O_CLOEXEC | O_NONBLOCK | (userModeOnly ? UFFD_USER_MODE_ONLY : 0);
  int fd = -1;
  if (!userModeOnly) {
    int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
      fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
      ::close(dev);
    }
  }
  if (fd < 0) fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (fd < 0) return -1;
  uffdio_api api;
  memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool canRegister(int fd) {
  const size_t len = static_cast<size_t>(sysconf(_SC_PAGESIZE)) * 2;
  void* p = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  bool ok = uffdRegister(fd, static_cast<uint8_t*>(p), len) == 0;
  munmap(p, len);  // unregisters as well
  return ok;
}

struct Service {
  int fd = -1;
  uint64_t spinNs = 50000;
  // Scan windows to load ahead of a views() reader, [pfNext, pfEnd): set after a fault in a
  // scan window, worked off one window at a time while no fault is waiting.
  uintptr_t pfNext = 0, pfEnd = 0;
};

// How often the service serves waiting faults again while any wait (ms).
constexpr int kResumePollMs = 100;

std::atomic<Service*> g_service{nullptr};
std::mutex g_startMu;
int g_startErrno = 0;

void serve(Service* S, const uffd_msg& msg) {
  const uintptr_t addr = static_cast<uintptr_t>(msg.arg.pagefault.address);
  int slot = -1;
  RegionImpl* R = registryAcquire(addr, &slot);
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t lo = addr & ~(page - 1), hi = lo + page;
  if (R && (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
    // A write into a shut scan window: opened (the protection lifted), or dropped back to
    // placeholders (the woken writer faults again, through the MISSING path). A protection
    // is never lifted here otherwise: see scan_write_fault.cc.
    serveScanWriteFault(R, addr);
    registryRelease(slot);
  } else if (R) {
    bool waits = false;
    serveFault(R, addr, true, &lo, &hi, &waits);
    if (waits) {  // answered when its block is fetched (waiting_faults.cc)
      registryRelease(slot);
      return;
    }
    uintptr_t from = 0, to = 0;
    if (scanPrefetchRange(R, addr, &from, &to)) {
      S->pfNext = from;
      S->pfEnd = to;
    }
    registryRelease(slot);
  }
  uffdWake(S->fd, lo, hi);
}

// Loads the next window of [pfNext, pfEnd) ahead of its reader (the region is looked up
// again: it may have closed).
void prefetchOne(Service* S) {
  const uintptr_t at = S->pfNext;
  S->pfNext += kScanWindowBytes;
  int slot = -1;
  RegionImpl* R = registryAcquire(at, &slot);
  if (!R) {
    S->pfNext = S->pfEnd;
    return;
  }
  prefetchScanWindow(R, at);
  registryRelease(slot);
}

bool drain(Service* S) {
  uffd_msg msgs[32];
  bool any = false;
  for (;;) {
    ssize_t n = read(S->fd, msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EINTR) continue;
      return any;  // EAGAIN: drained
    }
    any = true;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); i++)
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) serve(S, msgs[i]);
  }
}

void* serviceMain(void* arg) {
  Service* S = static_cast<Service*>(arg);
  for (;;) {
    // Faults first; between them, the windows a views() reader will reach next.
    if (S->pfNext < S->pfEnd) {
      if (!drain(S)) prefetchOne(S);
      continue;
    }
    // While faults wait for fetches, they are served again every kResumePollMs whatever
    // the fetcher does (a fault past its wait is answered then: it never waits for ever).
    pollfd p = {S->fd, POLLIN, -1};
    const int ready = poll(&p, 1, waitingFaultsNow() ? kResumePollMs : -1);
    if (ready < 0) {
      if (errno != EINTR) usleep(1000);
      continue;
    }
    if (ready == 0) {
      resumeWaitingFaults();
      continue;
    }
    drain(S);
    uint64_t until = monoNs() + S->spinNs;
    while (S->spinNs && monoNs() < until)
      if (drain(S)) until = monoNs() + S->spinNs;
      else cpuRelax();
  }
  return nullptr;
}

Service* startService() {
  std::lock_guard<std::mutex> g(g_startMu);
  if (Service* s = g_service.load(std::memory_order_acquire)) return s;
  if (g_startErrno) {
    errno = g_startErrno;
    return nullptr;
  }
  int fd = openUffd(!systemInfo().kernelFaults);
  if (fd < 0) {
    g_startErrno = errno;
    return nullptr;
  }
  Service* S = new Service;
  S->fd = fd;
  if (const char* e = getenv("TXARRAY_UFFD_SPIN_US")) S->spinNs = strtoull(e, nullptr, 10) * 1000;
  // The thread must not take the process's signals (Node's handlers run on the main thread).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, nullptr, serviceMain, S);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    ::close(fd);
    delete S;
    g_startErrno = rc;
    errno = rc;
    return nullptr;
  }
  pthread_detach(t);
  g_service.store(S, std::memory_order_release);
  return S;
}

}  // namespace

UffdProbe probeUffd() {
  UffdProbe p;
  for (bool userOnly : {false, true}) {
    int fd = openUffd(userOnly);
    if (fd < 0) continue;
    bool ok = canRegister(fd);
    ::close(fd);
    if (ok) {
      p.ok = true;
      p.kernelFaults = !userOnly;
      return p;
    }
  }
  return p;
}

int uffdServiceFd() {
  Service* S = startService();
  return S ? S->fd : -1;
}

int uffdRegister(int fd, uint8_t* at, uint64_t len) {
  uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = reinterpret_cast<uint64_t>(at);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return errno;
  const uint64_t need = UINT64_C(1) << _UFFDIO_WAKE;
  return (reg.ioctls & need) == need ? 0 : ENOTSUP;
}

int uffdWake(int fd, uintptr_t lo, uintptr_t hi) {
  uffdio_range r{lo, hi - lo};
  return ioctl(fd, UFFDIO_WAKE, &r) == 0 ? 0 : errno;
}

int uffdUnregister(int fd, uint8_t* at, uint64_t len) {
  uffdio_range r{reinterpret_cast<uint64_t>(at), len};
  return ioctl(fd, UFFDIO_UNREGISTER, &r) == 0 ? 0 : errno;
}

}  // namespace vmem
}  // namespace txa
