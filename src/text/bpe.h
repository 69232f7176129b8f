// Byte-level BPE of one pre-token, and a thread-safe cache of its results.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/vocab.h"

namespace clip::text {

// Ids of one pre-token given as UTF-8 bytes: bytes -> symbols ("</w>" on the last), then the
// lowest-ranked adjacent pair is merged everywhere (left to right) until no pair merges.
// O(n log n) in the token length, so megabyte-long words are fine.
std::vector<int32_t> bpe_encode_word(const Vocab& vocab, std::string_view bytes);

// Pre-token -> ids, sharded by hash, each shard under its own lock. Bounded: a full shard is
// cleared (the reference's cache grows without bound; ours must not on untrusted input).
class BpeCache {
 public:
  explicit BpeCache(size_t max_entries = 1 << 18) : max_per_shard_(max_entries / kShards + 1) {}
  // Appends the ids of `word` to `out`, computing and caching them on a miss.
  void encode(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out);

 private:
  static constexpr size_t kShards = 32;
  static constexpr size_t kMaxCachedWordBytes = 256;  // longer words are computed, not cached
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  size_t max_per_shard_;
  Shard shards_[kShards];
};

}  // namespace clip::text
