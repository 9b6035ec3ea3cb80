/*
 * S1 baseline "LMDB, no txarray layer": copies random windows of rows out of a txarray
 * store with plain LMDB calls (read-only environment, one read transaction, mdb_get per
 * 64 KiB block, memcpy), in a separate process because LMDB forbids opening one
 * environment twice in a process (and the `lmdb` npm package cannot read our format).
 * Built by bench/lib/native-baseline.ts with the LMDB C sources of the lmdb package.
 *
 *   lmdb-windows <storeDir> <startsFile (u32le)> <windowRows> <rowBytes> <blockBytes> <passes>
 *
 * The store must hold one array (its id is read from the first key of `blocks`). Prints
 * one JSON line: {"seconds":[...per pass], "checksum": x}.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lmdb.h"

static void die(const char* what, int rc) {
  fprintf(stderr, "%s: %s\n", what, mdb_strerror(rc));
  exit(1);
}
static uint64_t be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}
static void putbe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc != 7) { fprintf(stderr, "usage: lmdb-windows dir starts rows rowBytes blockBytes passes\n"); return 2; }
  const char* dir = argv[1];
  uint64_t windowRows = strtoull(argv[3], 0, 10), rowBytes = strtoull(argv[4], 0, 10);
  uint64_t blockBytes = strtoull(argv[5], 0, 10);
  int passes = atoi(argv[6]);
  FILE* f = fopen(argv[2], "rb");
  if (!f) { perror("starts"); return 1; }
  fseek(f, 0, SEEK_END);
  size_t n = ftell(f) / 4;
  fseek(f, 0, SEEK_SET);
  uint32_t* starts = malloc(n * 4);
  if (fread(starts, 4, n, f) != n) { perror("read starts"); return 1; }
  fclose(f);
  uint64_t windowBytes = windowRows * rowBytes;
  uint8_t* out = malloc(n * windowBytes);
  memset(out, 0, n * windowBytes);  /* fault the output in before timing, like the JS side */

  MDB_env* env;
  MDB_txn* txn;
  MDB_dbi dbi;
  int rc;
  if ((rc = mdb_env_create(&env))) die("mdb_env_create", rc);
  mdb_env_set_maxdbs(env, 8);
  mdb_env_set_mapsize(env, (size_t)64 << 30);
  if ((rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0664))) die("mdb_env_open", rc);
  if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) die("mdb_txn_begin", rc);
  if ((rc = mdb_dbi_open(txn, "blocks", 0, &dbi))) die("mdb_dbi_open", rc);
  MDB_cursor* cur;
  MDB_val k, v;
  mdb_cursor_open(txn, dbi, &cur);
  if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST))) die("first block", rc);
  uint64_t id = be64(k.mv_data);
  mdb_cursor_close(cur);

  printf("{\"seconds\":[");
  double checksum = 0;
  uint8_t key[16];
  putbe64(key, id);
  for (int p = 0; p < passes; p++) {
    double t0 = now();
    uint8_t* dst = out;
    uint64_t lastIndex = UINT64_MAX;
    MDB_val val = {0, 0};
    for (size_t i = 0; i < n; i++) {
      uint64_t off = (uint64_t)starts[i] * rowBytes, left = windowBytes;
      while (left) {
        uint64_t index = off / blockBytes, within = off % blockBytes;
        uint64_t m = blockBytes - within < left ? blockBytes - within : left;
        if (index != lastIndex) {
          putbe64(key + 8, index);
          k.mv_size = 16;
          k.mv_data = key;
          rc = mdb_get(txn, dbi, &k, &val);
          if (rc == MDB_NOTFOUND) val.mv_size = 0;
          else if (rc) die("mdb_get", rc);
          lastIndex = index;
        }
        uint64_t have = val.mv_size > within ? (val.mv_size - within < m ? val.mv_size - within : m) : 0;
        if (have) memcpy(dst, (uint8_t*)val.mv_data + within, have);
        if (have < m) memset(dst + have, 0, m - have);
        dst += m;
        off += m;
        left -= m;
      }
    }
    double t = now() - t0;
    checksum += ((double*)out)[n * windowBytes / 8 - 1];
    printf("%s%.9f", p ? "," : "", t);
  }
  printf("],\"checksum\":%.17g}\n", checksum);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return 0;
}
