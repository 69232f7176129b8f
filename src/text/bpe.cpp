#include "text/bpe.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

namespace clip::text {
namespace {

struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

std::vector<int32_t> bpe_encode_word(const Vocab& vocab, std::string_view bytes) {
  const int32_t n = static_cast<int32_t>(bytes.size());
  if (n == 0) return {};
  // Symbols as a doubly linked list over their original positions; merged ones are dead.
  std::vector<int32_t> id(n), prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    id[i] = (i == n - 1) ? vocab.byte_end_id(b) : vocab.byte_id(b);
    prev[i] = i - 1;
    next[i] = (i + 1 < n) ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push_pair = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    if (const Vocab::Merge* m = vocab.find_merge(id[left], id[next[left]])) heap.push({m->rank, left});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);

  std::vector<Candidate> generation;
  while (!heap.empty()) {
    // The reference merges every occurrence of the lowest-ranked pair in one left-to-right
    // pass before looking again; pairs created by that pass never share its rank.
    const int32_t rank = heap.top().rank;
    generation.clear();
    while (!heap.empty() && heap.top().rank == rank) {
      generation.push_back(heap.top());
      heap.pop();
    }
    for (const Candidate& c : generation) {  // already in position order
      const int32_t left = c.pos;
      if (id[left] < 0) continue;  // consumed by an earlier merge
      const int32_t right = next[left];
      if (right < 0) continue;
      const Vocab::Merge* m = vocab.find_merge(id[left], id[right]);
      if (!m || m->rank != rank) continue;  // stale: a neighbour changed since it was queued
      id[left] = m->merged_id;
      id[right] = -1;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      push_pair(prev[left]);
      push_pair(left);
    }
  }
  std::vector<int32_t> out;
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
  return out;
}

namespace {
// FNV-1a: short words, good enough spread for an open-addressed table.
uint64_t hash_word(std::string_view w) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : w) h = (h ^ c) * 1099511628211ull;
  return h ^ (h >> 29);
}
}  // namespace

BpeCache::BpeCache() : slots_(new std::atomic<Entry*>[kSlots]) {
  for (size_t i = 0; i < kSlots; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

BpeCache::~BpeCache() {
  for (size_t i = 0; i < kSlots; ++i) delete slots_[i].load(std::memory_order_relaxed);
}

void BpeCache::encode(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out) {
  if (word.size() > kMaxWordBytes) {
    const std::vector<int32_t> ids = bpe_encode_word(vocab, word);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  const uint64_t h = hash_word(word);
  size_t slot = h & (kSlots - 1);
  // Linear probing; slots only go from empty to a published entry, never back.
  for (;;) {
    const Entry* e = slots_[slot].load(std::memory_order_acquire);
    if (!e) break;
    if (e->hash == h && e->word == word) {
      out.insert(out.end(), e->ids.begin(), e->ids.end());
      return;
    }
    slot = (slot + 1) & (kSlots - 1);
  }
  auto fresh = std::make_unique<Entry>(Entry{h, std::string(word), bpe_encode_word(vocab, word)});
  out.insert(out.end(), fresh->ids.begin(), fresh->ids.end());
  // Full (by count or by bytes): computed, not cached.
  const size_t cost = sizeof(Entry) + word.size() + fresh->ids.size() * sizeof(int32_t);
  if (entries_.fetch_add(1, std::memory_order_relaxed) >= kMaxEntries ||
      bytes_.fetch_add(cost, std::memory_order_relaxed) >= kMaxCachedBytes)
    return;
  for (;;) {
    Entry* expected = nullptr;
    if (slots_[slot].compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) {
      fresh.release();
      return;
    }
    // Another thread published here first; if it is the same word, ours is redundant.
    if (expected->hash == h && expected->word == word) return;
    slot = (slot + 1) & (kSlots - 1);
  }
}

}  // namespace clip::text
