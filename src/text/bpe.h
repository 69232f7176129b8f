// Byte-level BPE of one pre-token, and a concurrent cache of its results.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/vocab.h"

namespace clip::text {

// Ids of one pre-token given as UTF-8 bytes: bytes -> symbols ("</w>" on the last), then the
// lowest-ranked adjacent pair is merged everywhere (left to right) until no pair merges.
// O(n log n) in the token length, so megabyte-long words are fine.
std::vector<int32_t> bpe_encode_word(const Vocab& vocab, std::string_view bytes);

// Pre-token -> ids, shared by all threads of a Tokenizer. Lookups take no lock: the table is
// open-addressed with a fixed number of slots, each published once with an atomic pointer to an
// immutable entry. When it is half full, new words are computed but no longer cached, so memory
// stays bounded on untrusted input (the reference's cache grows without bound).
class BpeCache {
 public:
  BpeCache();
  ~BpeCache();
  BpeCache(const BpeCache&) = delete;
  BpeCache& operator=(const BpeCache&) = delete;

  // Appends the ids of `word` to `out`, computing and caching them on a miss.
  void encode(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out);

 private:
  // One allocation per word: the header, then the ids, then the word's bytes, so a hit reads
  // one block (the hash and lengths reject nearly every other word before any byte compare).
  struct Entry {
    uint64_t hash;
    uint32_t word_size, id_count;
    const int32_t* ids() const { return reinterpret_cast<const int32_t*>(this + 1); }
    const char* word() const { return reinterpret_cast<const char*>(ids() + id_count); }
    bool holds(uint64_t h, std::string_view w) const;
    static Entry* make(uint64_t h, std::string_view w, const std::vector<int32_t>& ids);
    static void destroy(Entry* e);
  };
  static constexpr size_t kSlots = size_t{1} << 17;
  static constexpr size_t kMaxEntries = kSlots / 2;
  static constexpr size_t kMaxWordBytes = 4096;        // longer words are computed, not cached
  static constexpr size_t kMaxCachedBytes = 32 << 20;  // words and ids together
  std::unique_ptr<std::atomic<Entry*>[]> slots_;
  std::atomic<size_t> entries_{0};
  std::atomic<size_t> bytes_{0};
};

}  // namespace clip::text
