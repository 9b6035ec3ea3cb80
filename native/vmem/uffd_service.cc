// The userfaultfd fault service: one process-wide thread serving every Uffd region.
//
// Two userfaultfds at most, because the write-protect flavour is a property of the fd
// (UFFD_FEATURE_WP_ASYNC is negotiated by UFFDIO_API): one for Sync regions, one for Async
// regions, both opened when the service starts and polled by the same thread. The thread
// lives until the process exits (it holds no resource a region needs after close()).
//
// Serving a fault (see serve()): find the region by address (registry), make room in the
// budget if a unit is about to be loaded (without the region lock: lock order), take the
// region lock, then
//   missing fault, unit not loaded  -> loadUnitLocked (UFFDIO_COPY with DONTWAKE), wake
//   missing fault, unit loaded      -> duplicate message: wake
//   WP fault, block clean           -> markDirtyLocked (unprotects the block and wakes)
//   WP fault, unit no longer loaded -> evicted meanwhile: wake, it refaults as missing
// Unknown addresses (a region closed meanwhile) are woken and forgotten.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
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

constexpr uint64_t kZeroBytes = 1 << 20;  // read-only zeros, the source of zero fills

uint64_t featuresFor(WpMode wp) {
  return UFFD_FEATURE_PAGEFAULT_FLAG_WP | (wp == WpMode::Async ? UFFD_FEATURE_WP_ASYNC : 0);
}

// A new userfaultfd, non-blocking, not restricted to user-mode faults (we must serve the
// faults taken inside read()/write()). /dev/userfaultfd first: it is how a non-root user
// may be granted full userfaultfd when vm.unprivileged_userfaultfd is 0.
int openUffd() {
  int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  int devErrno = errno;
  if (dev >= 0) {
    int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    devErrno = errno;
    ::close(dev);
    if (fd >= 0) return fd;
  }
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0 && errno == ENOSYS) errno = devErrno;
  return fd;
}

// Opens and negotiates. Returns the fd, or -1 with errno set.
int openConfigured(WpMode wp) {
  int fd = openUffd();
  if (fd < 0) return -1;
  uffdio_api api;
  memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  api.features = featuresFor(wp);
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  if ((api.features & featuresFor(wp)) != featuresFor(wp)) {
    ::close(fd);
    errno = ENOTSUP;
    return -1;
  }
  return fd;
}

// Checks that an fd can register MISSING|WP on anonymous memory and offers what we use.
bool canRegister(int fd) {
  const size_t len = static_cast<size_t>(sysconf(_SC_PAGESIZE)) * 2;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = reinterpret_cast<uint64_t>(p);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
  bool ok = ioctl(fd, UFFDIO_REGISTER, &reg) == 0;
  const uint64_t need = (UINT64_C(1) << _UFFDIO_COPY) | (UINT64_C(1) << _UFFDIO_WAKE) |
                        (UINT64_C(1) << _UFFDIO_WRITEPROTECT);
  ok = ok && (reg.ioctls & need) == need;
  munmap(p, len);  // unregisters as well
  return ok;
}

struct Service {
  int fds[2] = {-1, -1};  // [0] Sync, [1] Async
  uint8_t* bounce = nullptr;  // one page, for the partial page of a fill
  uint8_t* zeros = nullptr;   // kZeroBytes of read-only zeros
  uint64_t pageBytes = 0;
  uint64_t spinNs = kDefaultUffdSpinMicros * 1000;  // busy-poll after serving a fault
};

// Created once, never destroyed (process lifetime: the detached thread uses it until exit).
std::atomic<Service*> g_service{nullptr};
std::mutex g_startMu;
int g_startErrno = 0;

void serve(Service* S, int fd, const uffd_msg& msg) {
  const uint64_t page = S->pageBytes;
  const uintptr_t addr = static_cast<uintptr_t>(msg.arg.pagefault.address) & ~(page - 1);
  int slot;
  RegionImpl* R = registryAcquire(addr, &slot);
  if (!R || R->uffd != fd) {
    // Not ours (any more): let the thread retry; it then sees plain memory or a closed
    // range. Errors (the range is gone) are expected here and meaningless.
    uffdWake(fd, reinterpret_cast<uint8_t*>(addr), page);
    if (R) registryRelease(slot);
    return;
  }
  const bool wpFault = (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) != 0;
  const bool write = (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0;
  const uint64_t u = (addr - reinterpret_cast<uintptr_t>(R->base)) / R->unitBytes;
  const uint64_t b = R->blockOfUnit(u);
  if (!wpFault && R->budget && !unitIsLoaded(R, u))
    budgetMakeRoom(R->budget, R->faultBytes);
  {
    FutexLock g(R->mu);
    uint8_t* unit = R->unitAddr(u);
    if (wpFault) {
      if (!unitIsLoaded(R, u)) {
        uffdWake(fd, reinterpret_cast<uint8_t*>(addr), page);
      } else if (!R->blocks[b].dirty) {
        markDirtyLocked(R, b);  // unprotects the block's loaded units, which wakes
      } else {
        R->st.spurious++;
        int e = uffdWriteProtect(fd, reinterpret_cast<uint8_t*>(addr), page, false);
        if (e) recordErrorLocked(R, Status::SystemError, e, b, "unprotect after WP fault");
      }
    } else if (unitIsLoaded(R, u)) {
      R->st.spurious++;
      uffdWake(fd, unit, R->unitBytes);
    } else {
      // On failure the unit stays not loaded: waking makes the thread fault again and we
      // retry (there is no way to fail a fault without UFFD_FEATURE_SIGBUS).
      uint64_t w0, w1;
      loadWindowLocked(R, u, write, &w0, &w1);
      int e = uffdWake(fd, R->unitAddr(w0), (w1 - w0) * R->unitBytes);
      if (e) recordErrorLocked(R, Status::SystemError, e, b, "ioctl(UFFDIO_WAKE)");
    }
  }
  registryRelease(slot);
}

void drain(Service* S, int fd) {
  uffd_msg msgs[32];
  for (;;) {
    ssize_t n = read(fd, msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained. Anything else: poll will tell us again.
    }
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); i++)
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) serve(S, fd, msgs[i]);
  }
}

uint64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Reads without sleeping for up to spinNs. Returns true if a message was served.
bool spinDrain(Service* S, uint64_t spinNs) {
  const uint64_t until = monoNs() + spinNs;
  do {
    for (int i = 0; i < 2; i++) {
      if (S->fds[i] < 0) continue;
      pollfd p = {S->fds[i], POLLIN, 0};
      if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
        drain(S, S->fds[i]);
        return true;
      }
    }
    cpuRelax();
  } while (monoNs() < until);
  return false;
}

void* serviceMain(void* arg) {
  Service* S = static_cast<Service*>(arg);
  for (;;) {
    // Faults come in bursts (a scan, a memcpy over a range): after serving one, watch for
    // the next for a short while instead of sleeping; a sleep/wake-up costs tens of µs.
    while (S->spinNs && spinDrain(S, S->spinNs)) {
    }
    pollfd p[2] = {{S->fds[0], POLLIN, 0}, {S->fds[1], POLLIN, 0}};  // fd -1 is skipped
    int r = poll(p, 2, -1);
    if (r < 0) {
      if (errno != EINTR) usleep(1000);  // cannot happen with valid fds; do not spin
      continue;
    }
    for (int i = 0; i < 2; i++)
      if (p[i].revents & (POLLIN | POLLERR)) drain(S, S->fds[i]);
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
  Service* S = new Service;
  S->pageBytes = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (const char* e = getenv("TXARRAY_UFFD_SPIN_US"))
    S->spinNs = strtoull(e, nullptr, 10) * 1000;
  auto fail = [&](int e) -> Service* {
    for (int fd : S->fds)
      if (fd >= 0) ::close(fd);
    if (S->bounce) munmap(S->bounce, S->pageBytes);
    if (S->zeros) munmap(S->zeros, kZeroBytes);
    delete S;
    g_startErrno = e;
    errno = e;
    return nullptr;
  };
  S->fds[0] = openConfigured(WpMode::Sync);
  if (S->fds[0] < 0) return fail(errno);
  if (systemInfo().uffdAsyncWp) {
    S->fds[1] = openConfigured(WpMode::Async);
    if (S->fds[1] < 0) return fail(errno);
  }
  void* p = mmap(nullptr, S->pageBytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return fail(errno);
  S->bounce = static_cast<uint8_t*>(p);
  p = mmap(nullptr, kZeroBytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return fail(errno);
  S->zeros = static_cast<uint8_t*>(p);

  // The service thread takes no signals: they belong to the application's threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t attr;
  if (int e = pthread_attr_init(&attr)) return fail(e);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 << 10);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int e = pthread_create(&t, &attr, serviceMain, S);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (e) return fail(e);
  pthread_setname_np(t, "txa-vmem-uffd");
  g_service.store(S, std::memory_order_release);
  return S;
}

// UFFDIO_COPY of [src, src+len) to [dst, dst+len) (page-aligned dst and len; src may be
// unaligned). The fault service copies with DONTWAKE (it wakes the whole window once) and
// keeps a page found present (EEXIST: never by design, kept for robustness: the page holds
// what a fault would have loaded). Region::write() wakes as it goes and treats EEXIST as an
// error: the page would keep bytes other than the caller's.
int copyRange(int fd, uint64_t page, uint8_t* dst, const uint8_t* src, uint64_t len, bool wp,
              bool wake = false, bool keepExisting = true) {
  while (len) {
    uffdio_copy c;
    memset(&c, 0, sizeof c);
    c.dst = reinterpret_cast<uint64_t>(dst);
    c.src = reinterpret_cast<uint64_t>(src);
    c.len = len;
    c.mode = (wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE) | (wp ? UFFDIO_COPY_MODE_WP : 0);
    if (ioctl(fd, UFFDIO_COPY, &c) == 0) return 0;
    const int e = errno;
    const uint64_t copied = c.copy > 0 ? static_cast<uint64_t>(c.copy) : 0;
    dst += copied;
    src += copied;
    len -= copied;
    if (e == EEXIST && keepExisting) {
      if (len < page) return 0;
      dst += page;
      src += page;
      len -= page;
    } else if (e != EAGAIN && e != EINTR) {
      return e;  // ENOENT/ESRCH: the range was unregistered (closing); ENOMEM; EEXIST; ...
    }
  }
  return 0;
}

}  // namespace

UffdProbe probeUffd() {
  UffdProbe p;
  for (WpMode wp : {WpMode::Sync, WpMode::Async}) {
    int fd = openConfigured(wp);
    if (fd < 0) continue;
    bool ok = canRegister(fd);
    ::close(fd);
    (wp == WpMode::Sync ? p.sync : p.async) = ok;
  }
  p.async = p.async && p.sync;
  return p;
}

int uffdServiceFd(WpMode wp) {
  Service* S = startService();
  if (!S) return -1;
  int fd = S->fds[wp == WpMode::Async ? 1 : 0];
  if (fd < 0) errno = ENOTSUP;
  return fd;
}

int uffdFill(RegionImpl* R, uint8_t* dst, uint64_t len, const uint8_t* src, uint64_t avail,
             bool wp) {
  // Set before any region could be registered, hence before any fault.
  Service* S = g_service.load(std::memory_order_acquire);
  const uint64_t page = S->pageBytes;
  const int fd = R->uffd;
  const uint64_t full = avail & ~(page - 1);
  uint64_t done = 0;
  // Straight from the source's memory (e.g. LMDB's map): the source may be unaligned.
  if (full) {
    if (int e = copyRange(fd, page, dst, src, full, wp)) return e;
    done = full;
  }
  if (avail > full) {  // the partial page: source bytes, then zeros
    memcpy(S->bounce, src + full, avail - full);
    memset(S->bounce + (avail - full), 0, page - (avail - full));
    if (int e = copyRange(fd, page, dst + done, S->bounce, page, wp)) return e;
    done += page;
  }
  // Zeros are copied rather than mapped with UFFDIO_ZEROPAGE: that ioctl cannot map
  // write-protected, and an unprotected zero page would neither fault on write (Sync) nor
  // read as unwritten (Async).
  while (done < len) {
    uint64_t n = std::min(len - done, kZeroBytes);
    if (int e = copyRange(fd, page, dst + done, S->zeros, n, wp)) return e;
    done += n;
  }
  return 0;
}

int uffdCopyIn(RegionImpl* R, uint8_t* dst, const uint8_t* src, uint64_t len, bool wp) {
  Service* S = g_service.load(std::memory_order_acquire);  // set before any registration
  if (src) return copyRange(R->uffd, S->pageBytes, dst, src, len, wp, true, false);
  while (len) {
    const uint64_t n = std::min(len, kZeroBytes);
    if (int e = copyRange(R->uffd, S->pageBytes, dst, S->zeros, n, wp, true, false)) return e;
    dst += n;
    len -= n;
  }
  return 0;
}

int uffdWriteProtect(int uffd, uint8_t* addr, uint64_t len, bool protect) {
  uffdio_writeprotect w;
  memset(&w, 0, sizeof w);
  w.range.start = reinterpret_cast<uint64_t>(addr);
  w.range.len = len;
  // Unprotecting wakes the thread that took the write-protect fault. (Protecting never
  // wakes; the kernel rejects MODE_WP|MODE_DONTWAKE with EINVAL.)
  w.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  for (;;) {
    if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0) return 0;
    if (errno != EAGAIN && errno != EINTR) return errno;
  }
}

int uffdWake(int uffd, uint8_t* addr, uint64_t len) {
  uffdio_range r{reinterpret_cast<uint64_t>(addr), len};
  return ioctl(uffd, UFFDIO_WAKE, &r) == 0 ? 0 : errno;
}

int pagemapFd() {
  static const int fd = [] {
    int f = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (f < 0) return -1;
    // Probe the ioctl on a page of our own: ENOTTY/EINVAL means no PAGEMAP_SCAN.
    const size_t len = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      ::close(f);
      return -1;
    }
    page_region vec[1];
    pm_scan_arg a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.start = reinterpret_cast<uint64_t>(p);
    a.end = a.start + len;
    a.vec = reinterpret_cast<uint64_t>(vec);
    a.vec_len = 1;
    a.category_mask = PAGE_IS_PRESENT;
    a.return_mask = PAGE_IS_PRESENT;
    long r = ioctl(f, PAGEMAP_SCAN, &a);
    munmap(p, len);
    if (r < 0) {
      ::close(f);
      return -1;
    }
    return f;
  }();
  return fd;
}

}  // namespace vmem
}  // namespace txa
