#include "session.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "error.h"
#include "keys.h"

namespace txa {
namespace {

std::string idPrefix(uint64_t id) {
  std::string key(8, '\0');
  keys::putU64be(reinterpret_cast<uint8_t*>(&key[0]), id);
  return key;
}

// Fills out's header fields from the stored record `raw` of array `name` (not its body).
// Throws Error(kFormat) for a record too short to hold a header.
void readRecordHeader(const std::string& name, const std::string& raw, Record* out) {
  if (raw.size() < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  auto header = keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(raw.data()));
  out->id = header.id;
  out->serial = header.serial;
  out->rows = header.rows;
  out->rowBytes = header.rowBytes;
}

}  // namespace

std::shared_ptr<vmem::Budget> processMappingBudget() {
  vmem::Error e;
  std::shared_ptr<vmem::Budget> shared = vmem::processBudget(&e);
  if (!shared) throw Error(ErrorCode::kArgument, e.what);
  return shared;
}

Session::Session(std::shared_ptr<Env> env, uint64_t mappings)
    : env_(std::move(env)),
      store_(env_),
      budget_(mappings ? std::make_shared<vmem::Budget>(mappings) : processMappingBudget()) {
  snapshot_ = std::make_shared<Snapshot>(env_);
  holder_ = std::make_shared<SnapshotHolder>(snapshot_);
}

void Session::closeArrays() {
  std::vector<std::shared_ptr<TrackedArray>> live;
  liveArrays(&live);
  for (const auto& array : live) array->close();
  arrays_.clear();
}

void Session::adopt(std::shared_ptr<Snapshot> snapshot) {
  snapshot_ = snapshot;
  holder_->set(std::move(snapshot));
}

bool Session::getRecord(const std::string& name, Record* out) {
  std::string raw;
  if (!snapshot_->get(env_->arraysDb(), name, &raw)) return false;
  readRecordHeader(name, raw, out);
  out->body = raw.substr(keys::kRecordHeader);
  return true;
}

std::vector<std::string> Session::listRecords() {
  std::vector<std::string> names;
  snapshot_->listKeys(env_->arraysDb(), &names);
  return names;
}

bool Session::getMeta(const std::string& key, std::string* out) {
  return snapshot_->get(env_->metaDb(), key, out);
}

std::shared_ptr<TrackedArray> Session::track(uint64_t id, uint32_t blockBytes, uint64_t byteLength,
                                             const std::string& name) {
  auto array = std::make_shared<TrackedArray>(holder_, id, blockBytes, byteLength, budget_, stats_, name);
  // Forget arrays the JavaScript side has released, so the list stays short.
  std::vector<Tracked> kept;
  for (auto& tracked : arrays_) if (!tracked.array.expired()) kept.push_back(std::move(tracked));
  kept.push_back({array, name});
  arrays_.swap(kept);
  return array;
}

void Session::liveArrays(std::vector<std::shared_ptr<TrackedArray>>* out) {
  for (auto& tracked : arrays_) if (auto array = tracked.array.lock()) out->push_back(array);
}

bool Session::latestRecord(const std::string& name, Record* out) {
  Snapshot newest(env_);
  std::string raw;
  if (!newest.get(env_->arraysDb(), name, &raw)) return false;
  readRecordHeader(name, raw, out);
  return true;
}

bool Session::readCommits(uint64_t after, size_t limit, std::vector<CommitEntry>* out) {
  Snapshot newest(env_);
  return newest.commits(after, limit, out);
}

bool Session::getSegment(uint64_t arrayId, const std::string& name, Segment* out) {
  std::string value;
  if (!env_->hasSegments()) return false;
  if (!snapshot_->get(env_->segmentsDb(), keys::segmentNameKey(arrayId, name), &value)) return false;
  if (value.size() != 16) throw Error(ErrorCode::kFormat, "segment '" + name + "' is damaged");
  const uint8_t* p = reinterpret_cast<const uint8_t*>(value.data());
  *out = Segment{name, keys::getU64le(p), keys::getU64le(p + 8)};
  return true;
}

void Session::listSegments(uint64_t arrayId, bool first, uint64_t afterStart, const std::string& afterName,
                           size_t limit, std::vector<Segment>* out) {
  if (!env_->hasSegments()) return;
  std::string prefix = idPrefix(arrayId) + keys::kSegmentByRow;
  std::string from = first ? prefix : keys::segmentRowKey(arrayId, afterStart, afterName);
  std::vector<std::pair<std::string, std::string>> found;
  // One more than asked when resuming: the first key found is the one we stopped at.
  snapshot_->scan(env_->segmentsDb(), from, prefix, first ? limit : limit + 1, &found);
  for (const auto& [key, value] : found) {
    if (!first && key == from) continue;
    if (key.size() < prefix.size() + 8 || value.size() != 8) throw Error(ErrorCode::kFormat, "a segment is damaged");
    const uint8_t* k = reinterpret_cast<const uint8_t*>(key.data()) + prefix.size();
    out->push_back(Segment{key.substr(prefix.size() + 8), keys::getU64be(k),
                           keys::getU64le(reinterpret_cast<const uint8_t*>(value.data()))});
    if (out->size() == limit) break;
  }
}

Session::Outcome Session::commit(const std::vector<RecordChange>& records, const std::vector<MetaPut>& meta,
                                 const std::vector<SegmentChange>& segments, bool sync) {
  std::vector<std::shared_ptr<TrackedArray>> live;
  liveArrays(&live);
  const std::vector<std::shared_ptr<ArrayChanges>> arrays(live.begin(), live.end());
  std::unique_ptr<BlockRead> read = LmdbBlockStore::readOf(snapshot_);
  CommitResult result = commitChanges(store_, CommitRequest{records, meta, segments, arrays, *read, sync}, stats_.get());
  read.reset();
  Outcome outcome;
  outcome.serial = result.serial;
  outcome.assignedIds = std::move(result.assignedIds);
  outcome.othersChanged = std::move(result.othersChanged);

  // Move to the newest snapshot; what others committed after us is stale here too. The
  // commit is durable by now, so nothing below may throw: a failure to begin the new
  // snapshot (reader slots full...) leaves the handle on its old one, flagged stale.
  bool moved = true;
  try {
    adopt(std::make_shared<Snapshot>(env_));
    if (snapshot_->serial() > outcome.serial &&
        !snapshot_->changesSince(outcome.serial, &outcome.othersChanged)) {
      outcome.othersUnknown = true;
    }
  } catch (const std::exception& e) {
    moved = false;
    outcome.stale = e.what();
  }
  for (const auto& array : live) {
    uint64_t assigned = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].array == array) assigned = outcome.assignedIds[i];
    }
    if (array->id() == 0 && assigned == 0) continue;  // created and dropped: nothing kept
    auto rebased = result.rebasedLengths.find(array->id());
    if (array->id() && rebased != result.rebasedLengths.end()) {
      // Our appended rows now live elsewhere: reload everything of this array.
      array->afterRebase(rebased->second);
      outcome.othersChanged.addRecord(array->id());  // the caller reloads the record
    } else if (!moved) {
      array->afterCommitUnmoved(array->id() ? 0 : assigned);
    } else {
      array->afterCommit(array->id() ? 0 : assigned, outcome.othersChanged, outcome.othersUnknown);
    }
  }
  return outcome;
}

Session::Outcome Session::refresh() {
  Outcome outcome;
  const uint64_t before = snapshot_->serial();
  std::vector<std::shared_ptr<TrackedArray>> live;
  liveArrays(&live);
  for (const auto& array : live) array->discardChanges();  // under the old snapshot
  adopt(std::make_shared<Snapshot>(env_));
  outcome.serial = snapshot_->serial();
  if (outcome.serial != before && !snapshot_->changesSince(before, &outcome.othersChanged)) {
    outcome.othersUnknown = true;
  }
  for (const auto& array : live) array->afterRefresh(outcome.othersChanged, outcome.othersUnknown);
  return outcome;
}

}  // namespace txa
