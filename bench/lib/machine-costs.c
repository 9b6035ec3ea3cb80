/*
 * The machine's costs that bound the view layer, measured in C so that no runtime stands
 * between the figure and the kernel (built by bench/lib/native-baseline.ts, run by
 * bench/machine.ts):
 *   - fresh anonymous page touch: the first write to each page of a fresh anonymous
 *     mapping (the kernel's zero-fill fault), µs per 4 KiB page;
 *   - madvise(MADV_DONTNEED) of 17 populated pages (one 64 KiB block and its header page),
 *     µs per call;
 *   - hot file page map: mmap(MAP_PRIVATE | MAP_FIXED) of 64 KiB of a hot file over a
 *     placeholder, then a read of each page, µs per 64 KiB (and GB/s);
 *   - first write to a mapped file page (the kernel's copy-on-write), µs per page;
 *   - memcpy between two populated 256 MiB buffers, GB/s;
 *   - pread of a hot file in 64 KiB reads into one buffer, GB/s;
 *   - huge-page fill: pread of a hot file, 2 MiB at a time, into an anonymous mapping
 *     advised MADV_HUGEPAGE (one page-table entry per 2 MiB where the kernel grants
 *     transparent huge pages), then MADV_DONTNEED of it, GB/s — what a view that copied
 *     sequential scans into huge pages instead of mapping 4 KiB file pages would pay.
 *     -1 where the kernel refuses MADV_HUGEPAGE (THP disabled);
 *   - one S1 window (16 rows of 2000 float64: 256 000 bytes) at a random place of the hot
 *     file, copied into a warm buffer: from a fresh MAP_PRIVATE mapping of the whole file
 *     (the first access to the window's pages: the kernel's read faults, fault-around
 *     included), and with one pread of the same bytes; µs per window each. Their ratio
 *     bounds a view's first touch against fs.readSync per window on this machine: any
 *     view maps at least the window's pages, with no call of ours in between.
 *
 *   machine-costs <hotFile> <hotBytes>
 *
 * Creates <hotFile> of <hotBytes> (a multiple of 64 KiB) if it is not that size, reads it
 * once (so that its pages are in the page cache), and prints one JSON line. Each figure is
 * the median of several repetitions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define BLOCK (64 << 10)
#define REPS 5

static void die(const char* what) {
  fprintf(stderr, "machine-costs: %s: %s\n", what, strerror(errno));
  exit(1);
}
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}
static double median(double* xs, int n) {
  qsort(xs, n, sizeof *xs, cmp);
  return xs[n / 2];
}
static void* mapAnon(size_t len, int prot) {
  void* p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die("mmap anonymous");
  return p;
}
static void unmap(void* p, size_t len) {
  if (munmap(p, len) != 0) die("munmap");
}
static volatile uint64_t sink;

/* µs per page of the first write to each page of a fresh 64 MiB anonymous mapping. */
static double anonTouchUs(void) {
  const size_t len = 64 << 20;
  double xs[REPS];
  for (int r = 0; r < REPS; r++) {
    volatile uint8_t* p = mapAnon(len, PROT_READ | PROT_WRITE);
    double t0 = now();
    for (size_t o = 0; o < len; o += PAGE) p[o] = 1;
    xs[r] = (now() - t0) * 1e6 / (len / PAGE);
    unmap((void*)p, len);
  }
  return median(xs, REPS);
}

/* µs per madvise(MADV_DONTNEED) of 17 populated pages. */
static double dontneedUs(void) {
  const size_t len = 17 * PAGE;
  const int calls = 200;
  double xs[REPS];
  volatile uint8_t* p = mapAnon(len, PROT_READ | PROT_WRITE);
  for (int r = 0; r < REPS; r++) {
    double total = 0;
    for (int c = 0; c < calls; c++) {
      for (size_t o = 0; o < len; o += PAGE) p[o] = 1;
      double t0 = now();
      if (madvise((void*)p, len, MADV_DONTNEED) != 0) die("madvise");
      total += now() - t0;
    }
    xs[r] = total * 1e6 / calls;
  }
  unmap((void*)p, len);
  return median(xs, REPS);
}

/*
 * Maps the hot file 64 KiB at a time over a PROT_NONE placeholder of its size and reads
 * one byte of each page: µs per 64 KiB. With `write`, then writes one byte of each mapped
 * page (copy-on-write) and returns µs per page of that instead.
 */
static double fileMapUs(int fd, size_t bytes, int write) {
  double xs[REPS];
  for (int r = 0; r < REPS; r++) {
    uint8_t* base = mapAnon(bytes, PROT_NONE);
    double t0 = now();
    uint64_t s = 0;
    for (size_t o = 0; o < bytes; o += BLOCK) {
      void* p = mmap(base + o, BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, (off_t)o);
      if (p == MAP_FAILED) die("mmap file");
      for (size_t q = 0; q < BLOCK; q += PAGE) s += ((volatile uint8_t*)base)[o + q];
    }
    double mapped = now() - t0;
    if (write) {
      t0 = now();
      for (size_t o = 0; o < bytes; o += PAGE) ((volatile uint8_t*)base)[o] = 1;
      xs[r] = (now() - t0) * 1e6 / (bytes / PAGE);
    } else {
      xs[r] = mapped * 1e6 / (bytes / BLOCK);
    }
    sink += s;
    unmap(base, bytes);
  }
  return median(xs, REPS);
}

static double memcpyGBps(void) {
  const size_t len = 256 << 20;
  uint8_t* a = mapAnon(len, PROT_READ | PROT_WRITE);
  uint8_t* b = mapAnon(len, PROT_READ | PROT_WRITE);
  memset(a, 7, len);
  memset(b, 1, len);
  double xs[REPS];
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    memcpy(b, a, len);
    xs[r] = len / (now() - t0) / 1e9;
    sink += b[r];
  }
  unmap(a, len);
  unmap(b, len);
  return median(xs, REPS);
}

static double preadGBps(int fd, size_t bytes) {
  uint8_t* buf = mapAnon(BLOCK, PROT_READ | PROT_WRITE);
  memset(buf, 1, BLOCK);
  double xs[REPS];
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    for (size_t o = 0; o < bytes; o += BLOCK) {
      if (pread(fd, buf, BLOCK, (off_t)o) != BLOCK) die("pread");
    }
    xs[r] = bytes / (now() - t0) / 1e9;
    sink += buf[r];
  }
  unmap(buf, BLOCK);
  return median(xs, REPS);
}

/* Creates the file at `bytes` if it is not that size, then reads it once. */
static int hotFile(const char* path, size_t bytes) {
  int fd = open(path, O_RDWR | O_CREAT, 0644);
  if (fd < 0) die("open hot file");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  static uint8_t chunk[BLOCK];
  if ((size_t)st.st_size != bytes) {
    if (ftruncate(fd, 0) != 0) die("ftruncate");
    for (size_t o = 0; o < bytes; o += BLOCK) {
      for (size_t i = 0; i < BLOCK; i += 8) memcpy(chunk + i, &o, 8);
      if (pwrite(fd, chunk, BLOCK, (off_t)o) != BLOCK) die("pwrite");
    }
  }
  for (size_t o = 0; o < bytes; o += BLOCK) {
    if (pread(fd, chunk, BLOCK, (off_t)o) != BLOCK) die("pread (warm)");
  }
  return fd;
}

/*
 * Fills 2 MiB-aligned windows of an anonymous MADV_HUGEPAGE mapping from the hot file
 * with pread and drops them again; GB/s of the fill and drop. The first repetition also
 * pays for assembling huge pages and is one of the REPS the median sees.
 */
static double hugeFillGBps(int fd, size_t bytes) {
  const size_t huge = 2u << 20;
  if (bytes % huge) return -1;
  double xs[REPS];
  for (int r = 0; r < REPS; r++) {
    uint8_t* raw = mapAnon(bytes + huge, PROT_READ | PROT_WRITE);
    uint8_t* base = (uint8_t*)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (madvise(base, bytes, MADV_HUGEPAGE) != 0) {
      unmap(raw, bytes + huge);
      return -1;
    }
    double t0 = now();
    for (size_t o = 0; o < bytes; o += huge) {
      if (pread(fd, base + o, huge, (off_t)o) != (ssize_t)huge) die("pread (huge)");
    }
    if (madvise(base, bytes, MADV_DONTNEED) != 0) die("madvise(DONTNEED) huge");
    xs[r] = bytes / (now() - t0) / 1e9;
    unmap(raw, bytes + huge);
  }
  return median(xs, REPS);
}

#define WINDOW_BYTES 256000
#define WINDOW_PASSES 31

/*
 * µs per window of copying WINDOW_BYTES at each of the file's window slots, in a shuffled
 * order, into one warm buffer: with `mapped`, from a fresh MAP_PRIVATE mapping of the file
 * made before the timing (so each window is the first access to its pages), else with
 * pread. The median over WINDOW_PASSES passes (a pass is a few milliseconds).
 */
static double windowUs(int fd, size_t bytes, int mapped) {
  const size_t slots = bytes / WINDOW_BYTES;
  if (slots == 0) return -1;
  size_t* order = malloc(slots * sizeof *order);
  uint8_t* out = mapAnon(WINDOW_BYTES, PROT_READ | PROT_WRITE);
  if (!order) die("malloc");
  memset(out, 1, WINDOW_BYTES);
  uint64_t seed = 12345;
  for (size_t i = 0; i < slots; i++) order[i] = i;
  for (size_t i = slots - 1; i > 0; i--) {  // Fisher-Yates with a fixed LCG
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    size_t j = (size_t)((seed >> 33) % (i + 1)), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  double xs[WINDOW_PASSES];
  for (int r = 0; r < WINDOW_PASSES; r++) {
    uint8_t* map = NULL;
    if (mapped) {
      map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (map == MAP_FAILED) die("mmap hot file");
    }
    double t0 = now();
    for (size_t i = 0; i < slots; i++) {
      const off_t at = (off_t)(order[i] * WINDOW_BYTES);
      if (mapped) memcpy(out, map + at, WINDOW_BYTES);
      else if (pread(fd, out, WINDOW_BYTES, at) != WINDOW_BYTES) die("pread (window)");
    }
    xs[r] = (now() - t0) * 1e6 / slots;
    sink += out[r];
    if (map) unmap(map, bytes);
  }
  free(order);
  unmap(out, WINDOW_BYTES);
  return median(xs, WINDOW_PASSES);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: machine-costs <hotFile> <hotBytes>\n");
    return 2;
  }
  size_t bytes = strtoull(argv[2], 0, 10);
  if (bytes == 0 || bytes % BLOCK) {
    fprintf(stderr, "machine-costs: hotBytes must be a positive multiple of 65536\n");
    return 2;
  }
  int fd = hotFile(argv[1], bytes);
  double anon = anonTouchUs();
  double dontneed = dontneedUs();
  double map = fileMapUs(fd, bytes, 0);
  double cow = fileMapUs(fd, bytes, 1);
  double copy = memcpyGBps();
  double readGB = preadGBps(fd, bytes);
  double hugeGB = hugeFillGBps(fd, bytes);
  double windowMapUs = windowUs(fd, bytes, 1);
  double windowPreadUs = windowUs(fd, bytes, 0);
  if (close(fd) != 0) die("close");
  printf("{\"anonTouchUsPerPage\":%.4f,\"dontneed17PagesUs\":%.3f,\"fileMapUsPer64K\":%.3f,"
         "\"fileMapGBps\":%.4f,\"fileCowUsPerPage\":%.4f,\"memcpyGBps\":%.3f,\"preadGBps\":%.3f,\"hugeFillGBps\":%.3f,"
         "\"windowFirstTouchUs\":%.3f,\"windowPreadUs\":%.3f}\n",
         anon, dontneed, map, BLOCK / map / 1e3, cow, copy, readGB, hugeGB, windowMapUs, windowPreadUs);
  return 0;
}
