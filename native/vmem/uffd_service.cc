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
//   missing fault, unit not loaded  -> loadWindowLocked (UFFDIO_MOVE of recycled pool pages
//                                      or UFFDIO_COPY, with DONTWAKE), plus the grown window
//                                      if sequential, wake, then prefetch (read-ahead)
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
constexpr uint64_t kPoolBytes = kPagePoolMaxBytes;  // address space of one pool

uint64_t featuresFor(WpMode wp) {
  return UFFD_FEATURE_PAGEFAULT_FLAG_WP | (wp == WpMode::Async ? UFFD_FEATURE_WP_ASYNC : 0);
}

// TXARRAY_VMEM_NO_MOVE=1: never negotiate UFFD_FEATURE_MOVE (tests of the UFFDIO_COPY path).
bool moveDisabledByEnv() {
  const char* e = getenv("TXARRAY_VMEM_NO_MOVE");
  return e && *e && strcmp(e, "0") != 0;
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

// Opens and negotiates. Returns the fd, or -1 with errno set. *move (if given) tells
// whether UFFD_FEATURE_MOVE was granted: it is asked for unless disabled by the environment
// (a kernel older than 6.8 rejects the unknown bit with EINVAL: then a new fd without it).
int openConfigured(WpMode wp, bool* move = nullptr) {
  bool wantMove = move && !moveDisabledByEnv();
  if (move) *move = false;
  for (;;) {
    int fd = openUffd();
    if (fd < 0) return -1;
    uffdio_api api;
    memset(&api, 0, sizeof api);
    api.api = UFFD_API;
    api.features = featuresFor(wp) | (wantMove ? UFFD_FEATURE_MOVE : 0);
    if (ioctl(fd, UFFDIO_API, &api) != 0) {
      int e = errno;
      ::close(fd);
      if (wantMove && e == EINVAL) {
        wantMove = false;
        continue;
      }
      errno = e;
      return -1;
    }
    if ((api.features & featuresFor(wp)) != featuresFor(wp)) {
      ::close(fd);
      errno = ENOTSUP;
      return -1;
    }
    if (move) *move = wantMove && (api.features & UFFD_FEATURE_MOVE) != 0;
    return fd;
  }
}

// Checks that an fd can register MISSING|WP on anonymous memory and offers what we use.
// *move (in: UFFD_FEATURE_MOVE granted) is cleared if the registration lacks UFFDIO_MOVE.
bool canRegister(int fd, bool* move) {
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
  *move = *move && ok && (reg.ioctls & (UINT64_C(1) << _UFFDIO_MOVE)) != 0;
  munmap(p, len);  // unregisters as well
  return ok;
}

// The page pool of one userfaultfd (see vmem.h, "Page recycling"): a ring of kPoolBytes
// of private anonymous memory, registered with that fd in WP mode only (UFFDIO_MOVE needs
// its destination registered with the fd it is issued on; without MISSING mode a touch of
// a pool hole is an ordinary page fault, never a message to the service thread; pool pages
// are never write-protected: UFFDIO_MOVE does not carry the uffd-wp bit, measured).
// Slots [head, head+count) (mod cap) hold populated pages, the others are holes.
// Producers (drops, any thread, with their Region::mu) hold `mu` while they move pages in at
// the tail. The one consumer, the service thread, reads head/count under `mu`, then fills and
// moves out those slots without it (no producer touches them: they are counted in `count`),
// then takes `mu` again to advance head. Lock order: Region::mu before Pool::mu; nothing
// else is taken, no region memory is touched and no pin() runs while it is held.
struct Pool {
  FutexMutex mu;
  uint8_t* base = nullptr;
  uint64_t cap = 0;  // slots (pages)
  uint64_t head = 0, count = 0;
  std::atomic<uint64_t> movedIn{0}, recycled{0}, fallbacks{0};
};

struct Service {
  int fds[2] = {-1, -1};  // [0] Sync, [1] Async
  bool move[2] = {false, false};  // UFFD_FEATURE_MOVE granted and the pool is set up
  Pool pools[2];
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
  uint64_t raFrom = 0, raCount = 0;
  const bool wpFault = (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) != 0;
  const bool write = (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0;
  const uint64_t u = (addr - reinterpret_cast<uintptr_t>(R->base)) / R->unitBytes;
  const uint64_t b = R->blockOfUnit(u);
  // Sequential read faults grow the window by `ra` units, and prefetch as many after waking.
  const uint64_t ra = wpFault ? 0 : readAheadUnits(R, u, write);
  if (!wpFault && R->budget && !unitIsLoaded(R, u))
    budgetMakeRoom(R->budget, R->faultBytes + ra * R->unitBytes);
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
      const uint64_t sourceErrors = R->st.sourceErrors;
      int le = loadWindowLocked(R, u, write, &w0, &w1);
      const bool sourceFailed = R->st.sourceErrors != sourceErrors;
      const bool stream = ra && !le && !sourceFailed;
      uint64_t end = w1;
      if (stream) end = readAheadLocked(R, w1, ra, /*yield=*/false);  // the grown window
      int e = uffdWake(fd, R->unitAddr(w0), (end - w0) * R->unitBytes);
      if (e) recordErrorLocked(R, Status::SystemError, e, b, "ioctl(UFFDIO_WAKE)");
      // A write fault, or a fault whose source failed, ends the stream (reading ahead of a
      // writer would load clean units that each take a write-protect fault next).
      R->raUnits = stream ? ra : 0;
      R->raRun = !write && !le && !sourceFailed && u == R->raNext ? R->raRun + 1 : 0;
      R->raNext = write || le || sourceFailed ? UINT64_MAX : end;
      if (stream && end == w1 + ra) {
        raFrom = end;
        raCount = ra;
      }
    }
  }
  if (raCount) {
    // Prefetch after waking the faulting thread: these fills overlap its work. Room first,
    // without the region lock (lock order), as for a fault.
    if (R->budget) budgetMakeRoom(R->budget, raCount * R->unitBytes);
    FutexLock g(R->mu);
    if (R->raNext == raFrom) R->raNext = readAheadLocked(R, raFrom, raCount, /*yield=*/true);
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

bool setUpPool(Service* S, int i) {
  Pool& P = S->pools[i];
  void* p = mmap(nullptr, kPoolBytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  // 4 KiB pages only (a THP cannot be moved into a 4 KiB-aligned window), and not inherited
  // by fork(): a child sharing them copy-on-write would make them non-exclusive (EBUSY).
  bool ok = (madvise(p, kPoolBytes, MADV_NOHUGEPAGE) == 0 || errno == EINVAL) &&
            madvise(p, kPoolBytes, MADV_DONTFORK) == 0;
  uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = reinterpret_cast<uint64_t>(p);
  reg.range.len = kPoolBytes;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  ok = ok && ioctl(S->fds[i], UFFDIO_REGISTER, &reg) == 0 &&
       (reg.ioctls & (UINT64_C(1) << _UFFDIO_MOVE)) != 0;
  if (!ok) {
    munmap(p, kPoolBytes);  // unregisters as well
    return false;
  }
  P.base = static_cast<uint8_t*>(p);
  P.cap = kPoolBytes / S->pageBytes;
  return true;
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
    for (Pool& p : S->pools)
      if (p.base) munmap(p.base, kPoolBytes);
    for (int fd : S->fds)
      if (fd >= 0) ::close(fd);
    if (S->bounce) munmap(S->bounce, S->pageBytes);
    if (S->zeros) munmap(S->zeros, kZeroBytes);
    delete S;
    g_startErrno = e;
    errno = e;
    return nullptr;
  };
  S->fds[0] = openConfigured(WpMode::Sync, &S->move[0]);
  if (S->fds[0] < 0) return fail(errno);
  if (systemInfo().uffdAsyncWp) {
    S->fds[1] = openConfigured(WpMode::Async, &S->move[1]);
    if (S->fds[1] < 0) return fail(errno);
  }
  // The pools. Any failure here only turns recycling off for that fd (fills then copy).
  for (int i = 0; i < 2; i++)
    if (S->move[i]) S->move[i] = setUpPool(S, i);
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
    bool move = false;
    int fd = openConfigured(wp, &move);
    if (fd < 0) continue;
    bool ok = canRegister(fd, &move);
    ::close(fd);
    (wp == WpMode::Sync ? p.sync : p.async) = ok;
    if (wp == WpMode::Sync) p.move = ok && move;
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

namespace {

// The bytes [off, off+n) of a unit image (`avail` bytes of src, then zeros) into `out`.
void composeImage(uint8_t* out, uint64_t off, uint64_t n, const uint8_t* src, uint64_t avail) {
  uint64_t have = avail > off ? std::min(avail - off, n) : 0;
  if (have) memcpy(out, src + off, have);
  if (have < n) memset(out + have, 0, n - have);
}

// Whether [p, p+n) holds bytes [off, off+n) of the image.
bool holdsImage(const uint8_t* p, uint64_t off, uint64_t n, const uint8_t* src, uint64_t avail,
                const uint8_t* zeros) {
  uint64_t have = avail > off ? std::min(avail - off, n) : 0;
  if (have && memcmp(p, src + off, have) != 0) return false;
  for (uint64_t i = have; i < n;) {
    const uint64_t k = std::min(n - i, kZeroBytes);
    if (memcmp(p + i, zeros, k) != 0) return false;
    i += k;
  }
  return true;
}

// UFFDIO_MOVE of len bytes (page-aligned) from src to dst, never waking. Returns the bytes
// moved; sets *err to the errno that stopped it (0 if all moved). EAGAIN (a racing page
// table change) is retried a few times; anything else (EBUSY: a page shared after fork(),
// pinned, or a huge page; EEXIST; ENOENT: a hole) stops it and the caller falls back.
uint64_t moveRange(int fd, uint8_t* dst, uint8_t* src, uint64_t len, int* err) {
  uint64_t done = 0;
  *err = 0;
  for (int retries = 0; done < len;) {
    uffdio_move m;
    memset(&m, 0, sizeof m);
    m.dst = reinterpret_cast<uint64_t>(dst + done);
    m.src = reinterpret_cast<uint64_t>(src + done);
    m.len = len - done;
    m.mode = UFFDIO_MOVE_MODE_DONTWAKE;
    if (ioctl(fd, UFFDIO_MOVE, &m) == 0) return len;
    const int e = errno;
    if (m.move > 0) done += static_cast<uint64_t>(m.move);
    if ((e == EAGAIN || e == EINTR) && ++retries < 8) continue;
    *err = e;
    return done;
  }
  return done;
}

Pool* poolOf(Service* S, int fd) {
  for (int i = 0; i < 2; i++)
    if (S->fds[i] == fd) return S->move[i] ? &S->pools[i] : nullptr;
  return nullptr;
}

// UFFDIO_COPY of bytes [off, len) of the unit image to dst+off (off page-aligned).
int copyImage(Service* S, int fd, uint8_t* dst, uint64_t off, uint64_t len, const uint8_t* src,
              uint64_t avail, bool wp) {
  const uint64_t page = S->pageBytes;
  const uint64_t full = avail > off ? (avail - off) & ~(page - 1) : 0;  // whole source pages
  uint64_t done = off;
  // Straight from the source's memory (e.g. LMDB's map): the source may be unaligned.
  if (full) {
    if (int e = copyRange(fd, page, dst + done, src + done, full, wp)) return e;
    done += full;
  }
  if (avail > done && done < len) {  // the partial page: source bytes, then zeros
    memcpy(S->bounce, src + done, avail - done);
    memset(S->bounce + (avail - done), 0, page - (avail - done));
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

}  // namespace

int uffdFill(RegionImpl* R, uint8_t* dst, uint64_t len, const uint8_t* src, uint64_t avail,
             bool wp, bool* raced) {
  // Set before any region could be registered, hence before any fault.
  Service* S = g_service.load(std::memory_order_acquire);
  const uint64_t page = S->pageBytes;
  const int fd = R->uffd;
  *raced = false;
  uint64_t done = 0;
  Pool* P = R->move ? poolOf(S, fd) : nullptr;
  int err = 0;
  while (P && done < len) {
    uint64_t h, n;
    {
      FutexLock g(P->mu);
      h = P->head;
      n = std::min(std::min(P->count, P->cap - h), (len - done) / page);
    }
    if (n == 0) break;  // the pool is empty: copy the rest
    uint8_t* pp = P->base + h * page;
    const uint64_t bytes = n * page;
    composeImage(pp, done, bytes, src, avail);  // pool pages are populated: no fault
    int e;
    const uint64_t moved = moveRange(fd, dst + done, pp, bytes, &e);
    if (moved < bytes) {
      // Fallback for the rest: the pool pages hold the right bytes, copy them. Then make
      // their slots holes again (the ring's invariant), whatever they hold.
      P->fallbacks.fetch_add(1, std::memory_order_relaxed);
      err = copyRange(fd, page, dst + done + moved, pp + moved, bytes - moved, wp);
      if (madvise(pp + moved, bytes - moved, MADV_DONTNEED) != 0 && !err) err = errno;
    }
    {
      FutexLock g(P->mu);
      P->head = (h + n) % P->cap;
      P->count -= n;
    }
    P->movedIn.fetch_add(moved / page, std::memory_order_relaxed);
    R->st.movedBytes += moved;
    if (moved && wp && !err) {
      // UFFDIO_MOVE maps the page writable and without the uffd-wp bit (it has no WP mode):
      // protect it now, before anybody is woken. A store by another thread that found the
      // page present between the move and this protection did not fault: the comparison
      // below finds it (after the protection, a store faults), and the block goes dirty.
      // Reading these pages here cannot fault: they were just moved in and R->mu is held.
      err = uffdWriteProtect(fd, dst + done, moved, true);
      if (!err && !holdsImage(dst + done, done, moved, src, avail, S->zeros)) *raced = true;
    }
    if (err) break;
    done += bytes;
  }
  if (!err && done < len) err = copyImage(S, fd, dst, done, len, src, avail, wp);
  if (err) {
    // A unit is loaded whole or not at all: drop what this fill did map (moved pages may
    // be unprotected; a retry then finds holes again). Best effort: the fill has failed.
    (void)madvise(dst, len, MADV_DONTNEED);
  }
  return err;
}

int uffdDrop(RegionImpl* R, uint8_t* addr, uint64_t len, uint64_t poolLimitBytes,
             uint64_t* recycled) {
  *recycled = 0;
  Service* S = g_service.load(std::memory_order_acquire);
  Pool* P = R->move ? poolOf(S, R->uffd) : nullptr;
  uint64_t done = 0;
  if (P) {
    const uint64_t page = S->pageBytes;
    FutexLock g(P->mu);
    const uint64_t limit = std::min(P->cap, poolLimitBytes / page);
    while (done < len && P->count < limit) {
      const uint64_t tail = (P->head + P->count) % P->cap;
      const uint64_t n = std::min(std::min((len - done) / page, limit - P->count), P->cap - tail);
      uint8_t* slot = P->base + tail * page;
      int e;
      const uint64_t moved = moveRange(R->uffd, slot, addr + done, n * page, &e);
      P->count += moved / page;
      done += moved;
      *recycled += moved;
      if (moved < n * page) {
        // EBUSY (e.g. a page shared with a fork()ed child), ...: the rest is dropped. The
        // slots past the moved ones must stay holes (an EEXIST would mean one was not).
        P->fallbacks.fetch_add(1, std::memory_order_relaxed);
        (void)madvise(slot + moved, n * page - moved, MADV_DONTNEED);
        break;
      }
    }
    P->recycled.fetch_add(*recycled / page, std::memory_order_relaxed);
  }
  if (done < len && madvise(addr + done, len - done, MADV_DONTNEED) != 0) return errno;
  return 0;
}

bool uffdFaultPending() {
  Service* S = g_service.load(std::memory_order_acquire);
  if (!S) return false;
  pollfd p[2] = {{S->fds[0], POLLIN, 0}, {S->fds[1], POLLIN, 0}};
  return poll(p, 2, 0) > 0;
}

bool uffdMoveAvailable(WpMode wp) {
  Service* S = g_service.load(std::memory_order_acquire);
  return S && S->move[wp == WpMode::Async ? 1 : 0];
}

PagePoolStats pagePoolStats() {
  PagePoolStats st;
  Service* S = g_service.load(std::memory_order_acquire);
  if (!S) return st;
  for (int i = 0; i < 2; i++) {
    if (!S->move[i]) continue;
    Pool& P = S->pools[i];
    st.enabled = true;
    st.capacityPages += P.cap;
    st.movedIn += P.movedIn.load();
    st.recycled += P.recycled.load();
    st.fallbacks += P.fallbacks.load();
    FutexLock g(P.mu);
    st.pages += P.count;
  }
  return st;
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
