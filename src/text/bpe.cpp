#include "text/bpe.h"

#include <algorithm>
#include <functional>
#include <queue>

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

void BpeCache::encode(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out) {
  if (word.size() > kMaxCachedWordBytes) {
    const std::vector<int32_t> ids = bpe_encode_word(vocab, word);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  Shard& shard = shards_[std::hash<std::string_view>{}(word) % kShards];
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.map.find(std::string(word));
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = bpe_encode_word(vocab, word);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.map.size() >= max_per_shard_) shard.map.clear();
  shard.map.emplace(std::string(word), std::move(ids));
}

}  // namespace clip::text
