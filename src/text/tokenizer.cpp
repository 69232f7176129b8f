#include "clip/tokenizer.h"

#include <algorithm>

#include "clip/error.h"
#include "text/bpe.h"
#include "text/clean.h"
#include "text/pretokenize.h"
#include "text/utf8.h"
#include "text/vocab.h"
#include "util/assets.h"
#include "util/file_io.h"
#include "util/thread_pool.h"

namespace clip {

namespace {
constexpr char kVocabFile[] = "bpe_simple_vocab_16e6.txt.gz";

bool holds_hf_vocab(const std::string& p) { return util::file_exists(p + "/vocab.json"); }
}  // namespace

std::string Tokenizer::default_vocab_path() { return util::find_asset(kVocabFile); }

Tokenizer::Tokenizer() : Tokenizer(from_openai_bpe(default_vocab_path())) {}

Tokenizer::Tokenizer(std::shared_ptr<const text::Vocab> vocab)
    : vocab_(std::move(vocab)), cache_(std::make_shared<text::BpeCache>()) {}

Tokenizer Tokenizer::from_openai_bpe(const std::string& path, int vocab_size) {
  return Tokenizer(std::make_shared<const text::Vocab>(text::Vocab::from_openai_bpe(path, vocab_size)));
}

Tokenizer Tokenizer::with_vocab_size(int vocab_size) { return from_openai_bpe(default_vocab_path(), vocab_size); }

Tokenizer Tokenizer::from_hf(const std::string& vocab_json, const std::string& merges_txt) {
  return Tokenizer(std::make_shared<const text::Vocab>(text::Vocab::from_hf(vocab_json, merges_txt)));
}

Tokenizer Tokenizer::from_path(const std::string& path) {
  if (holds_hf_vocab(path)) return from_hf(path + "/vocab.json", path + "/merges.txt");
  const std::string suffix = "vocab.json";
  if (path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    return from_hf(path, dir + "/merges.txt");
  }
  return from_openai_bpe(path);
}

namespace {

// Buffers encode_into reuses, so a run of texts allocates only while they grow.
struct EncodeScratch {
  char short_lowered[256];  // ASCII path: short texts need no allocation at all
  std::string lowered;      // ASCII path, longer texts
  std::u32string cleaned;   // general path
  std::string word;         // general path: one pre-token as UTF-8
};

// Appends the ids of `text` (no start/end tokens) to `ids`.
void encode_into(const text::Vocab& vocab, text::BpeCache& cache, std::string_view text, EncodeScratch& s,
                 std::vector<int32_t>& ids) {
  auto emit_special = [&](text::PretokenKind kind) {
    ids.push_back(kind == text::PretokenKind::kStartOfText ? vocab.sot_id() : vocab.eot_id());
  };
  char* lowered_data = s.short_lowered;
  if (text.size() > sizeof(s.short_lowered)) {
    s.lowered.resize(text.size());
    lowered_data = s.lowered.data();
  }
  if (text::lower_ascii_fast(text, lowered_data)) {
    const std::string_view lowered(lowered_data, text.size());
    text::for_each_pretoken(lowered, [&](size_t b, size_t e, text::PretokenKind kind) {
      if (kind == text::PretokenKind::kText) cache.encode(vocab, lowered.substr(b, e - b), ids);
      else emit_special(kind);
    });
    return;
  }
  text::clean_text_fast(text, s.cleaned);
  const std::u32string_view cleaned(s.cleaned);
  text::for_each_pretoken(cleaned, [&](size_t b, size_t e, text::PretokenKind kind) {
    if (kind != text::PretokenKind::kText) return emit_special(kind);
    s.word.clear();
    for (size_t i = b; i < e; ++i) text::append_utf8(s.word, cleaned[i]);
    cache.encode(vocab, s.word, ids);
  });
}

}  // namespace

std::string Tokenizer::clean(std::string_view text) const {
  std::string fast;
  if (text::clean_ascii_fast(text, fast)) return fast;
  std::u32string cleaned;
  text::clean_text_fast(text, cleaned);
  return text::u32_to_utf8(cleaned);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  EncodeScratch scratch;
  encode_into(*vocab_, *cache_, text, scratch, ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= vocab_->size())
      throw Error("decode: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(vocab_->size()) + ")");
    bytes += vocab_->id_bytes(id);
  }
  // As the reference: bytes -> UTF-8 with replacement, then each "</w>" becomes a space.
  std::string text = text::u32_to_utf8(text::utf8_to_u32(bytes));
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

TokenBatch Tokenizer::tokenize(const std::vector<std::string>& texts, int context_length, bool truncate,
                               int threads) const {
  if (context_length < 2)
    throw Error("context length " + std::to_string(context_length) + " is too small: expected at least 2");
  TokenBatch batch;
  batch.rows = static_cast<int64_t>(texts.size());
  batch.context_length = context_length;
  batch.ids.reset(new int64_t[batch.size()]);  // unset (default-initialized): each row is written whole below
  // Rows go in chunks, each with its own buffers, so texts reuse them.
  constexpr size_t kChunk = 64;
  auto fill_chunk = [&](size_t chunk) {
    EncodeScratch scratch;
    std::vector<int32_t> ids;
    for (size_t r = chunk * kChunk; r < std::min(texts.size(), (chunk + 1) * kChunk); ++r) {
      ids.clear();
      encode_into(*vocab_, *cache_, texts[r], scratch, ids);
      int64_t* row = batch.ids.get() + r * static_cast<size_t>(context_length);
      const size_t n = ids.size() + 2;
      if (n > static_cast<size_t>(context_length) && !truncate)
        throw Error("text " + std::to_string(r) + " has " + std::to_string(ids.size()) + " tokens (" +
                    std::to_string(n) + " with start and end), too long for context length " +
                    std::to_string(context_length));
      const size_t keep = std::min(ids.size(), static_cast<size_t>(context_length) - 2);
      row[0] = vocab_->sot_id();
      for (size_t i = 0; i < keep; ++i) row[i + 1] = ids[i];
      row[keep + 1] = vocab_->eot_id();
      std::fill(row + keep + 2, row + context_length, int64_t{0});
    }
  };
  const size_t chunks = (texts.size() + kChunk - 1) / kChunk;
  if (threads == 1 || chunks < 2) {
    for (size_t c = 0; c < chunks; ++c) fill_chunk(c);
  } else {
    util::ThreadPool pool(threads);
    pool.parallel_for(chunks, fill_chunk);
  }
  return batch;
}

int32_t Tokenizer::sot_id() const { return vocab_->sot_id(); }
int32_t Tokenizer::eot_id() const { return vocab_->eot_id(); }
size_t Tokenizer::vocab_size() const { return vocab_->size(); }

}  // namespace clip
