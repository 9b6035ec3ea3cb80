#include "snapshot.h"

#include <cstring>

#include "error.h"
#include "keys.h"

namespace txa {
namespace {

std::string outsideFile(const char* what, const std::string& path) {
  return std::string("a ") + what + " of the store at '" + path +
         "' points past the end of data.mdb: the file is damaged";
}

}  // namespace

Snapshot::Snapshot(std::shared_ptr<Env> env) : env_(std::move(env)) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock, std::defer_lock);
  txn_ = env_->begin(MDB_RDONLY, &mapGuard);
  try {
    serial_ = latestSerial(txn_, env_->logDb());
    // Only the cache of a remote store (meta "remote") can hold stubs.
    static const char kRemote[] = "remote";
    MDB_val k{sizeof kRemote - 1, const_cast<char*>(kRemote)}, v;
    const int rc = mdb_get(txn_, env_->metaDb(), &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_get(meta)");
    mayHoldStubs_ = rc == 0;
  } catch (...) {
    mdb_txn_abort(txn_);
    throw;
  }
}

Snapshot::~Snapshot() { mdb_txn_abort(txn_); }

namespace {

// LMDB 0.9's page header (MDB_page in mdb.c), read to find a value's page number: the
// first 16 bytes of every page are pgno (u64), a pad (u16), flags (u16), then for an
// overflow page the number of pages it spans (u32). (mdb_env_info's me_mapaddr cannot
// serve: it is the address a MDB_FIXEDMAP environment asks for, not where the map is.)
static_assert(MDB_VERSION_MAJOR == 0 && MDB_VERSION_MINOR == 9, "the page header layout below is LMDB 0.9's");
static_assert(sizeof(size_t) == 8, "64-bit page numbers");
constexpr uint16_t kLmdbOverflowPage = 0x04;  // P_OVERFLOW

std::string blockName(uint64_t arrayId, uint64_t index, const std::string* arrayName) {
  std::string array = arrayName ? "array '" + *arrayName + "'" : "array #" + std::to_string(arrayId);
  return array + " block " + std::to_string(index);
}

}  // namespace

int Snapshot::lookup(uint64_t arrayId, uint64_t index, MDB_val* value, bool* inMemory) noexcept {
  keys::BlockKey key(arrayId, index);
  MDB_val k{sizeof key.bytes, key.bytes};
  *inMemory = false;
  std::lock_guard<std::mutex> guard(txnLock_);
  int rc = mdb_get(txn_, env_->blocksDb(), &k, value);
  // A damaged page can give a value running past the end of data.mdb: reading it would
  // kill the process.
  if (rc == 0 && !env_->inFile(value->mv_data, value->mv_size)) rc = MDB_CORRUPTED;
  // Every block value of the format is at least a page; only a stub (or an earlier
  // format's value) is smaller.
  if (rc != 0 || value->mv_size != blockfmt::kStubBytes) return rc;
  blockfmt::Header stub;
  if (blockfmt::readHeader(static_cast<const uint8_t*>(value->mv_data), value->mv_size, &stub) !=
      blockfmt::Problem::kOnServer) {
    return rc;
  }
  auto found = fetched_.find({arrayId, index});
  if (found == fetched_.end()) return kBlockOnServer;
  *value = MDB_val{found->second.size(), found->second.data()};
  *inMemory = true;
  return 0;
}

bool Snapshot::locateValue(const MDB_val& value, bool inMemory, BlockLocation* out) const noexcept {
  if (!inMemory) return locate(value, out);
  blockfmt::Header h;
  *out = BlockLocation{};
  out->fd = env_->dataFd();
  if (blockfmt::readHeader(static_cast<const uint8_t*>(value.mv_data), value.mv_size, &h) != blockfmt::Problem::kNone) {
    return false;
  }
  out->bytes = h.storedIn(value.mv_size);
  return true;  // not in the file: copied from memory
}

bool Snapshot::locate(const MDB_val& value, BlockLocation* out) const noexcept {
  const size_t pageSize = env_->pageSize();
  const size_t prefix = blockfmt::prefixBytes(pageSize);
  *out = BlockLocation{};
  out->fd = env_->dataFd();
  const uint8_t* v = static_cast<const uint8_t*>(value.mv_data);
  const uint8_t* base = env_->mapBase();
  if (base && v >= base && value.mv_size > prefix && (value.mv_size - prefix) % pageSize == 0 &&
      uint64_t(v - base) % pageSize == blockfmt::kLmdbPageHeader) {
    // A value this large is never inside a leaf page: it is an overflow value, whose pages
    // LMDB keeps as they are while this snapshot is held.
    out->fileOffset = uint64_t(v - base) + prefix;
    out->bytes = value.mv_size - prefix;
    out->mappable = true;
    return true;
  }
  blockfmt::Header h;
  if (blockfmt::readHeader(v, value.mv_size, &h) != blockfmt::Problem::kNone) return false;
  out->bytes = h.storedIn(value.mv_size);
  const uint8_t* page = v - blockfmt::kLmdbPageHeader;
  if (h.dataOffset != prefix || reinterpret_cast<uintptr_t>(page) % pageSize != 0 || out->bytes % pageSize != 0) {
    return true;  // a block, but not laid out on pages: copy it
  }
  uint64_t pgno;
  uint16_t flags;
  uint32_t pages;
  memcpy(&pgno, page, 8);
  memcpy(&flags, page + 10, 2);
  memcpy(&pages, page + 12, 4);
  // More pages than needed is fine: a value rewritten in the transaction that wrote it
  // keeps its larger run of pages.
  if (!(flags & kLmdbOverflowPage) || pages < 1 + out->bytes / pageSize) return true;
  out->fileOffset = (pgno + 1) * pageSize;
  out->mappable = true;
  return true;
}

bool Snapshot::stored(uint64_t arrayId, uint64_t index, StoredBlock* out, const std::string* arrayName) {
  MDB_val v;
  bool inMemory;
  int rc = lookup(arrayId, index, &v, &inMemory);
  *out = StoredBlock{};
  if (rc == MDB_NOTFOUND) return false;
  if (rc == kBlockOnServer) {
    throw Error(ErrorCode::kRemoteUnavailable,
                blockName(arrayId, index, arrayName) + ": its bytes are on the remote server and were not fetched " +
                    "(a cache of a remote store opened with blocks: 'lazy'; open it with remote to fetch them)");
  }
  if (rc == MDB_CORRUPTED) {
    throw Error(ErrorCode::kCorrupt, blockName(arrayId, index, arrayName) +
                                         ": damaged (a page LMDB finds inconsistent, or a value running past the end of data.mdb)");
  }
  if (rc) throwLmdb(rc, "mdb_get(block)");
  out->value = static_cast<const uint8_t*>(v.mv_data);
  out->valueSize = v.mv_size;
  blockfmt::Problem problem = blockfmt::readHeader(out->value, v.mv_size, &out->header);
  if (problem != blockfmt::Problem::kNone) {
    throw Error(ErrorCode::kCorrupt, blockName(arrayId, index, arrayName) + ": " + blockfmt::describe(problem));
  }
  out->headerRead = true;
  out->data = BlockView{out->value + out->header.dataOffset, size_t(out->header.dataLength)};
  locateValue(v, inMemory, &out->location);
  return true;
}

bool Snapshot::storedData(uint64_t arrayId, uint64_t index, StoredBlock* out, const std::string* arrayName) {
  MDB_val v;
  bool inMemory;
  int rc = lookup(arrayId, index, &v, &inMemory);
  *out = StoredBlock{};
  if (rc == 0 && !inMemory && locate(v, &out->location) && out->location.mappable) {
    out->value = static_cast<const uint8_t*>(v.mv_data);
    out->valueSize = v.mv_size;
    const size_t prefix = v.mv_size - out->location.bytes;
    out->data = BlockView{out->value + prefix, size_t(out->location.bytes)};
    return true;
  }
  return stored(arrayId, index, out, arrayName);
}

bool Snapshot::block(uint64_t arrayId, uint64_t index, BlockView* out) {
  StoredBlock found;
  bool present = stored(arrayId, index, &found);
  *out = found.data;
  return present;
}

int Snapshot::tryBlock(uint64_t arrayId, uint64_t index, BlockView* out) noexcept {
  MDB_val v;
  bool inMemory;
  int rc = lookup(arrayId, index, &v, &inMemory);
  *out = BlockView{};
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return rc;
  blockfmt::Header h;
  const uint8_t* value = static_cast<const uint8_t*>(v.mv_data);
  if (blockfmt::readHeader(value, v.mv_size, &h) != blockfmt::Problem::kNone) return MDB_CORRUPTED;
  out->data = value + h.dataOffset;
  out->size = size_t(h.dataLength);
  return 0;
}

int Snapshot::tryBlockLocation(uint64_t arrayId, uint64_t index, BlockLocation* out) noexcept {
  MDB_val v;
  bool inMemory;
  int rc = lookup(arrayId, index, &v, &inMemory);
  *out = BlockLocation{};
  out->fd = env_->dataFd();
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return rc;
  return locateValue(v, inMemory, out) ? 0 : MDB_CORRUPTED;
}

bool Snapshot::holdsInFull(uint64_t arrayId, uint64_t index) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  MDB_val v;
  bool inMemory;
  return lookup(arrayId, index, &v, &inMemory) == 0 && !inMemory;
}

bool Snapshot::isStub(uint64_t arrayId, uint64_t index) noexcept {
  if (!mayHoldStubs_) return false;  // no lookup on the fault path of a local store
  MDB_val v;
  bool inMemory;
  return lookup(arrayId, index, &v, &inMemory) == kBlockOnServer;
}

bool Snapshot::onServer(uint64_t arrayId, uint64_t index, uint64_t* serial, uint64_t* length) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  MDB_val v;
  bool inMemory;
  if (lookup(arrayId, index, &v, &inMemory) != kBlockOnServer) return false;
  blockfmt::Header stub;
  blockfmt::readHeader(static_cast<const uint8_t*>(v.mv_data), v.mv_size, &stub);
  *serial = stub.serial;
  *length = stub.dataLength;
  return true;
}

bool Snapshot::addFetched(uint64_t arrayId, uint64_t index, uint64_t serial, const uint8_t* data, size_t size) {
  uint64_t stubSerial = 0, length = 0;
  if (!onServer(arrayId, index, &stubSerial, &length) || stubSerial != serial) return false;
  while (size > 0 && data[size - 1] == 0) --size;
  if (size > length) {
    throw Error(ErrorCode::kFormat, "array #" + std::to_string(arrayId) + " block " + std::to_string(index) +
                                        ": the server sent " + std::to_string(size) + " bytes for a version of " +
                                        std::to_string(length));
  }
  blockfmt::Header h;
  {
    std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
    MDB_val v;
    bool inMemory;
    lookup(arrayId, index, &v, &inMemory);
    blockfmt::readHeader(static_cast<const uint8_t*>(v.mv_data), v.mv_size, &h);
  }
  const size_t pageSize = env_->pageSize();
  std::vector<uint8_t> value(size_t(blockfmt::valueBytes(size, pageSize)));
  blockfmt::encode(value.data(), pageSize, arrayId, index, h.blockBytes, serial, data, size);
  std::lock_guard<std::mutex> guard(txnLock_);
  if (fetched_.emplace(std::make_pair(arrayId, index), std::move(value)).second) fetchedBytes_ += size;
  return true;
}

bool Snapshot::stubVersion(uint64_t arrayId, uint64_t index, uint64_t* serial, uint64_t* length) noexcept {
  if (!mayHoldStubs_) return false;
  MDB_val v;
  bool inMemory;
  if (lookup(arrayId, index, &v, &inMemory) != kBlockOnServer) return false;
  blockfmt::Header stub;
  if (blockfmt::readHeader(static_cast<const uint8_t*>(v.mv_data), v.mv_size, &stub) != blockfmt::Problem::kOnServer) return false;
  *serial = stub.serial;
  *length = stub.dataLength;
  return true;
}

void Snapshot::markFetchFailed(uint64_t arrayId, uint64_t index, uint64_t serial) {
  std::lock_guard<std::mutex> guard(txnLock_);
  fetchFailed_.emplace(arrayId, index, serial);
}

bool Snapshot::fetchFailed(uint64_t arrayId, uint64_t index, uint64_t serial) noexcept {
  std::lock_guard<std::mutex> guard(txnLock_);
  return !fetchFailed_.empty() && fetchFailed_.count(std::make_tuple(arrayId, index, serial)) != 0;
}

uint64_t Snapshot::fetchedBytes() {
  std::lock_guard<std::mutex> guard(txnLock_);
  return fetchedBytes_;
}

bool Snapshot::get(MDB_dbi db, const std::string& key, std::string* value) {
  MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  int rc = mdb_get(txn_, db, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) throwLmdb(rc, "mdb_get");
  if (!env_->inFile(v.mv_data, v.mv_size)) throw Error(ErrorCode::kCorrupt, outsideFile("record", env_->path()));
  value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return true;
}

void Snapshot::listKeys(MDB_dbi db, std::vector<std::string>* out) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open");
  MDB_val k, v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (!env_->inFile(k.mv_data, k.mv_size)) {
      mdb_cursor_close(cursor);
      throw Error(ErrorCode::kCorrupt, outsideFile("name", env_->path()));
    }
    out->emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get");
}

void Snapshot::scan(MDB_dbi db, const std::string& from, const std::string& prefix, size_t limit,
                    std::vector<std::pair<std::string, std::string>>* out) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open");
  MDB_val k{from.size(), const_cast<char*>(from.data())}, v;
  size_t taken = 0;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0 && taken < limit;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT), ++taken) {
    if (k.mv_size < prefix.size() || memcmp(k.mv_data, prefix.data(), prefix.size()) != 0) break;
    out->emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                      std::string(static_cast<const char*>(v.mv_data), v.mv_size));
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get");
}

bool Snapshot::commits(uint64_t after, size_t limit, std::vector<CommitEntry>* out) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  // Without `segments` the log's entries use an earlier encoding: any read as pruned.
  if (!env_->hasSegments()) return latestSerial(txn_, env_->logDb()) <= after;
  return readCommits(txn_, env_->logDb(), after, limit, out);
}

bool Snapshot::changesSince(uint64_t serial, ChangeSet* out) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  if (!env_->hasSegments()) return false;  // an earlier encoding: assume everything changed
  return readChangesSince(txn_, env_->logDb(), serial, out);
}

}  // namespace txa
