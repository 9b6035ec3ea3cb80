// A mutex that may be taken inside a SIGSEGV handler.
//
// pthread mutexes are not async-signal-safe by the letter of POSIX; this one is made of an
// atomic int and the futex system call, both of which are. (Taking it in a handler is still
// only safe because of THE RULE in vmem.h: no thread touches region memory while holding
// it, so a handler never waits for a lock its own thread holds.) Drepper's "mutex 3":
// 0 = free, 1 = locked, 2 = locked and maybe waited for.
#pragma once
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace txa {
namespace vmem {

inline void cpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class FutexMutex {
 public:
  void lock() noexcept {
    int c = 0;
    if (state_.compare_exchange_strong(c, 1, std::memory_order_acquire)) return;
    // Short spin: critical sections that do not call the source are a few µs.
    for (int i = 0; i < 100; i++) {
      c = 0;
      if (state_.load(std::memory_order_relaxed) == 0 &&
          state_.compare_exchange_strong(c, 1, std::memory_order_acquire))
        return;
      cpuRelax();
    }
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      // EAGAIN (value changed) and EINTR are both "look again".
      syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAIT_PRIVATE, 2, nullptr,
              nullptr, 0);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2)
      syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr,
              nullptr, 0);
  }

 private:
  static_assert(sizeof(std::atomic<int>) == sizeof(int), "futex needs a plain int");
  std::atomic<int> state_{0};
};

class FutexLock {
 public:
  explicit FutexLock(FutexMutex& m) noexcept : m_(m) { m_.lock(); }
  ~FutexLock() { m_.unlock(); }
  FutexLock(const FutexLock&) = delete;
  FutexLock& operator=(const FutexLock&) = delete;

 private:
  FutexMutex& m_;
};

}  // namespace vmem
}  // namespace txa
