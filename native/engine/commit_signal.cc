#include "commit_signal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace txa {
namespace {
constexpr size_t kFileBytes = 4096;
constexpr int64_t kPollMs = 5;  // fallback without a shared word
}  // namespace

CommitSignal::CommitSignal(const std::string& directory, bool readOnly) {
  std::string path = directory + "/txarray.signal";
  int fd = readOnly ? open(path.c_str(), O_RDONLY | O_CLOEXEC) : open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
  if (fd < 0) return;
  struct stat st;
  bool usable = false;
  if (readOnly) {
    // Reading a hole of a mapped file is safe (it reads zeros); reading past its end is not.
    usable = fstat(fd, &st) == 0 && st.st_size >= off_t(kFileBytes);
  } else {
    // Allocating (and if short, extending with zeros) is safe with concurrent openers:
    // the word starts at zero and the length only ever becomes kFileBytes.
    usable = posix_fallocate(fd, 0, kFileBytes) == 0;
  }
  if (usable) {
    void* map = mmap(nullptr, kFileBytes, readOnly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      word_ = static_cast<uint32_t*>(map);
      writable_ = !readOnly;
    }
  }
  close(fd);  // the mapping keeps the file
}

CommitSignal::~CommitSignal() {
  if (word_) munmap(word_, kFileBytes);
}

uint32_t CommitSignal::sample() const {
  return word_ ? __atomic_load_n(word_, __ATOMIC_ACQUIRE) : 0;
}

void CommitSignal::ring() {
  if (!word_ || !writable_) return;
  __atomic_add_fetch(word_, 1, __ATOMIC_RELEASE);
  // Shared (not FUTEX_PRIVATE): waiters in other processes map the same file page.
  syscall(SYS_futex, word_, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);  // best effort
}

void CommitSignal::wait(uint32_t seen, int64_t timeoutMs) const {
  if (timeoutMs <= 0) return;
  int64_t ms = word_ ? timeoutMs : std::min<int64_t>(timeoutMs, kPollMs);
  struct timespec ts{time_t(ms / 1000), long(ms % 1000) * 1000000L};
  if (!word_) {
    nanosleep(&ts, nullptr);
    return;
  }
  // EAGAIN (the value already moved), EINTR, ETIMEDOUT: all mean "look again".
  syscall(SYS_futex, word_, FUTEX_WAIT, seen, &ts, nullptr, 0);
}

}  // namespace txa
