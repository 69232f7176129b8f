// CLIP's byte-level BPE vocabulary: symbol ids, merge ranks, and the bytes each id stands for.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace clip::text {

// GPT-2's reversible byte -> printable code point map (bytes_to_unicode), in table order.
const std::vector<char32_t>& byte_symbol_table();

class Vocab {
 public:
  // OpenAI's bpe_simple_vocab_16e6.txt.gz: a header line, then merges "a b"; the first 48,894
  // merges are used. Ids: 256 byte symbols, the same with "</w>", one per merge, then sot, eot.
  // A smaller vocab_size keeps the first vocab_size - 514 merges (a smaller BPE vocabulary made
  // the same way, for models trained from scratch); the special tokens are then the last two ids.
  static constexpr int kOpenAIVocabSize = 49408;
  static constexpr int kMinVocabSize = 514;  // 512 byte symbols + start + end
  static Vocab from_openai_bpe(const std::string& gz_path, int vocab_size = kOpenAIVocabSize);
  // Hugging Face tokenizer files: vocab.json {token: id} and merges.txt ("#version" header
  // optional, then "a b" per line, rank = line order).
  static Vocab from_hf(const std::string& vocab_json_path, const std::string& merges_path);

  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };

  // The merge of the adjacent symbols (left, right), or nullptr when they do not merge.
  const Merge* find_merge(int32_t left, int32_t right) const {
    const uint64_t key = pair_key(left, right);
    for (uint64_t slot = slot_of(key);; slot = (slot + 1) & merge_mask_) {
      const MergeSlot& s = merge_table_[slot];
      if (s.key == key) return &s.merge;
      if (s.key == kEmptyKey) return nullptr;
    }
  }
  // Id of byte b as a word-inner symbol, and as the last symbol of a word ("</w>").
  int32_t byte_id(uint8_t b) const { return byte_ids_[b]; }
  int32_t byte_end_id(uint8_t b) const { return byte_end_ids_[b]; }
  int32_t sot_id() const { return sot_; }
  int32_t eot_id() const { return eot_; }
  size_t size() const { return id_bytes_.size(); }
  // The raw bytes an id decodes to; word ends keep their literal "</w>" (as the reference).
  const std::string& id_bytes(int32_t id) const { return id_bytes_.at(static_cast<size_t>(id)); }
  size_t merge_count() const { return merge_count_; }

 private:
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  uint64_t slot_of(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> merge_shift_; }
  void insert_merge(uint64_t key, Merge m);
  // Builds everything from symbol strings (UTF-8, in the byte-symbol alphabet) and merges.
  void build(const std::unordered_map<std::string, int32_t>& encoder,
             const std::vector<std::pair<std::string, std::string>>& merges, const std::vector<int>& merge_lines,
             const std::string& source);

  // Merge ranks in an open-addressed table (linear probing, at most half full): the BPE inner
  // loop's only lookup, so it is kept flat.
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};
  struct MergeSlot {
    uint64_t key = kEmptyKey;
    Merge merge{};
  };
  std::vector<MergeSlot> merge_table_;
  uint64_t merge_mask_ = 0;
  int merge_shift_ = 64;
  size_t merge_count_ = 0;
  std::vector<std::string> id_bytes_;
  int32_t byte_ids_[256] = {};
  int32_t byte_end_ids_[256] = {};
  int32_t sot_ = -1, eot_ = -1;
};

}  // namespace clip::text
