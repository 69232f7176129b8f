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
  static Vocab from_openai_bpe(const std::string& gz_path);
  // Hugging Face tokenizer files: vocab.json {token: id} and merges.txt ("#version" header
  // optional, then "a b" per line, rank = line order).
  static Vocab from_hf(const std::string& vocab_json_path, const std::string& merges_path);

  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };

  // The merge of the adjacent symbols (left, right), or nullptr when they do not merge.
  const Merge* find_merge(int32_t left, int32_t right) const {
    auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  }
  // Id of byte b as a word-inner symbol, and as the last symbol of a word ("</w>").
  int32_t byte_id(uint8_t b) const { return byte_ids_[b]; }
  int32_t byte_end_id(uint8_t b) const { return byte_end_ids_[b]; }
  int32_t sot_id() const { return sot_; }
  int32_t eot_id() const { return eot_; }
  size_t size() const { return id_bytes_.size(); }
  // The raw bytes an id decodes to; word ends keep their literal "</w>" (as the reference).
  const std::string& id_bytes(int32_t id) const { return id_bytes_.at(static_cast<size_t>(id)); }
  size_t merge_count() const { return merges_.size(); }

 private:
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // Builds everything from symbol strings (UTF-8, in the byte-symbol alphabet) and merges.
  void build(const std::unordered_map<std::string, int32_t>& encoder,
             const std::vector<std::pair<std::string, std::string>>& merges,
             const std::vector<int>& merge_lines, const std::string& source);

  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::string> id_bytes_;
  int32_t byte_ids_[256] = {};
  int32_t byte_end_ids_[256] = {};
  int32_t sot_ = -1, eot_ = -1;
};

}  // namespace clip::text
