#include "text/bpe.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <new>
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
// Eight bytes a step (words are short, but some are kilobytes), with murmur3's final mix so the
// low bits that pick the slot depend on every byte.
uint64_t hash_word(std::string_view w) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = w.size() * kMul;
  const char* p = w.data();
  size_t n = w.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    h = (h ^ x) * kMul;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  for (size_t k = 0; k < n; ++k) tail |= static_cast<uint64_t>(static_cast<unsigned char>(p[k])) << (8 * k);
  h = (h ^ tail) * kMul;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  return h ^ (h >> 33);
}
}  // namespace

bool BpeCache::Entry::holds(uint64_t h, std::string_view w) const {
  return hash == h && word_size == w.size() && std::memcmp(word(), w.data(), w.size()) == 0;
}

BpeCache::Entry* BpeCache::Entry::make(uint64_t h, std::string_view w, const std::vector<int32_t>& ids) {
  void* block = ::operator new(sizeof(Entry) + ids.size() * sizeof(int32_t) + w.size());
  Entry* e = new (block) Entry{h, static_cast<uint32_t>(w.size()), static_cast<uint32_t>(ids.size())};
  std::copy(ids.begin(), ids.end(), const_cast<int32_t*>(e->ids()));
  std::copy(w.begin(), w.end(), const_cast<char*>(e->word()));
  return e;
}

void BpeCache::Entry::destroy(Entry* e) {
  if (!e) return;
  e->~Entry();
  ::operator delete(e);
}

BpeCache::BpeCache() : slots_(new std::atomic<Entry*>[kSlots]) {
  for (size_t i = 0; i < kSlots; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

BpeCache::~BpeCache() {
  for (size_t i = 0; i < kSlots; ++i) Entry::destroy(slots_[i].load(std::memory_order_relaxed));
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
    if (e->holds(h, word)) {
      out.insert(out.end(), e->ids(), e->ids() + e->id_count);
      return;
    }
    slot = (slot + 1) & (kSlots - 1);
  }
  const std::vector<int32_t> ids = bpe_encode_word(vocab, word);
  out.insert(out.end(), ids.begin(), ids.end());
  // Full (by count or by bytes): computed, not cached.
  const size_t cost = sizeof(Entry) + word.size() + ids.size() * sizeof(int32_t);
  if (entries_.fetch_add(1, std::memory_order_relaxed) >= kMaxEntries ||
      bytes_.fetch_add(cost, std::memory_order_relaxed) >= kMaxCachedBytes)
    return;
  Entry* fresh = Entry::make(h, word, ids);
  for (;;) {
    Entry* expected = nullptr;
    if (slots_[slot].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return;
    // Another thread published here first; if it is the same word, ours is redundant.
    if (expected->holds(h, word)) {
      Entry::destroy(fresh);
      return;
    }
    slot = (slot + 1) & (kSlots - 1);
  }
}

}  // namespace clip::text
