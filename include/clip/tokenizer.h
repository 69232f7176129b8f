// CLIP's text tokenizer: the same ids as OpenAI's SimpleTokenizer on every input.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clip {

namespace text {
class Vocab;
class BpeCache;
}  // namespace text

// A [rows, context_length] matrix of token ids, row-major (what the text encoder takes).
// The ids are one block that tokenize() allocates unset and writes whole, in its worker threads,
// so the pages of a large batch are first touched (faulted in and zeroed by the kernel, the
// costliest part of a big batch here) in parallel, not by one thread beforehand. Move-only.
struct TokenBatch {
  int64_t rows = 0;
  int64_t context_length = 0;
  std::unique_ptr<int64_t[]> ids;  // rows * context_length
  size_t size() const { return static_cast<size_t>(rows * context_length); }
  const int64_t* data() const { return ids.get(); }
  const int64_t* begin() const { return ids.get(); }
  const int64_t* end() const { return ids.get() + size(); }
  const int64_t* row(int64_t i) const { return ids.get() + i * context_length; }
};

// Thread-safe: one Tokenizer may serve many threads (the BPE cache is internally locked).
// Copies share the vocabulary and the cache.
class Tokenizer {
 public:
  // OpenAI's vocabulary shipped with CLIP++ (bpe_simple_vocab_16e6.txt.gz).
  Tokenizer();
  // OpenAI's format: a .txt.gz (or plain .txt) merges file. vocab_size < 49408 keeps only the
  // first vocab_size - 514 merges: a smaller BPE vocabulary built the same way (for models trained
  // from scratch), with <|startoftext|> and <|endoftext|> as its last two ids.
  static Tokenizer from_openai_bpe(const std::string& path, int vocab_size = 49408);
  // The shipped OpenAI vocabulary cut to vocab_size as above.
  static Tokenizer with_vocab_size(int vocab_size);
  // Hugging Face format: vocab.json + merges.txt.
  static Tokenizer from_hf(const std::string& vocab_json, const std::string& merges_txt);
  // Picks the format from the path: a folder holding vocab.json + merges.txt, a vocab.json
  // (merges.txt beside it), or an OpenAI merges file.
  static Tokenizer from_path(const std::string& path);

  // The text as the tokenizer sees it: ftfy repairs, HTML unescaped twice, whitespace collapsed,
  // stripped, lowercased. Invalid UTF-8 becomes U+FFFD.
  std::string clean(std::string_view text) const;
  // Token ids of a text, without start/end tokens.
  std::vector<int32_t> encode(std::string_view text) const;
  // Text of token ids: word ends become spaces; invalid UTF-8 becomes U+FFFD.
  std::string decode(const std::vector<int32_t>& ids) const;

  // [start] + ids + [end], zero-padded to context_length. With truncate, an over-long text keeps
  // its first context_length ids with the last replaced by the end id; without, it is an error
  // naming the text's index and its token count. threads <= 0: all cores.
  TokenBatch tokenize(const std::vector<std::string>& texts, int context_length = 77, bool truncate = true,
                      int threads = 1) const;

  int32_t sot_id() const;
  int32_t eot_id() const;
  size_t vocab_size() const;

  // Where the shipped vocabulary is looked up: $CLIP_DATA_DIR, the install folder, the source tree.
  static std::string default_vocab_path();

 private:
  explicit Tokenizer(std::shared_ptr<const text::Vocab> vocab);
  std::shared_ptr<const text::Vocab> vocab_;
  std::shared_ptr<text::BpeCache> cache_;
};

}  // namespace clip
