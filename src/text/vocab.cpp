#include "text/vocab.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "text/utf8.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::text {
namespace {

constexpr int kOpenAIMerges = 49152 - 256 - 2;  // 48,894 merges used by CLIP
const char kSot[] = "<|startoftext|>";
const char kEot[] = "<|endoftext|>";

// GPT-2's table keeps printable Latin-1 bytes as themselves and shifts the others to U+0100+.
bool is_printable_byte(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

// Bytes in table order: the printable ones, then the rest (symbol i stands for byte_order()[i]).
std::vector<int> byte_order() {
  std::vector<int> order;
  for (int b = 0; b < 256; ++b)
    if (is_printable_byte(b)) order.push_back(b);
  for (int b = 0; b < 256; ++b)
    if (!is_printable_byte(b)) order.push_back(b);
  return order;
}

std::vector<char32_t> make_byte_symbol_table() {
  std::vector<char32_t> table;
  int shifted = 0;
  for (int b : byte_order()) table.push_back(is_printable_byte(b) ? char32_t(b) : char32_t(256 + shifted++));
  return table;
}

// The byte each symbol code point stands for (the inverse of the table), -1 when none.
int symbol_to_byte(char32_t c) {
  static const std::vector<int> inverse = [] {
    std::vector<int> inv(512, -1);
    const std::vector<int> order = byte_order();
    for (int i = 0; i < 256; ++i) inv[byte_symbol_table()[i]] = order[i];
    return inv;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

// The raw bytes a vocabulary symbol stands for; throws naming the source when it has a code
// point outside the byte alphabet.
std::string symbol_bytes(const std::string& symbol, const std::string& source) {
  std::string bytes;
  for (char32_t c : utf8_to_u32(symbol)) {
    const int b = symbol_to_byte(c);
    if (b < 0) throw Error(source + ": vocabulary symbol \"" + symbol + "\" is outside the byte alphabet");
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

// Reads a gzip file (or a plain one: zlib reads it through) with a clear error naming it.
std::string read_gzip(const std::string& path) {
  if (!util::file_exists(path)) throw Error(path + ": vocabulary file not found", ErrorKind::kNotFound);
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open vocabulary file", ErrorKind::kIo);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const std::string why = gzerror(f, &code);
      gzclose(f);
      throw Error(path + ": corrupt gzip data: " + why);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

// Splits a merge line "a b" (Python's str.split(): runs of ASCII whitespace here, since symbols
// never contain whitespace). Throws naming the file and 1-based line number.
std::pair<std::string, std::string> parse_merge(const std::string& line, const std::string& path, int line_no) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t j = i;
    while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
    if (j > i) parts.push_back(line.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 2)
    throw Error(path + ":" + std::to_string(line_no) + ": expected a merge \"left right\", found " +
                std::to_string(parts.size()) + " field(s)");
  if (utf8_to_u32(line).find(U'\uFFFD') != std::u32string::npos)
    throw Error(path + ":" + std::to_string(line_no) + ": invalid UTF-8 in merge line");
  return {parts[0], parts[1]};
}

std::string symbol_utf8(int index) { return u32_to_utf8(std::u32string(1, byte_symbol_table()[index])); }

}  // namespace

const std::vector<char32_t>& byte_symbol_table() {
  static const std::vector<char32_t> table = make_byte_symbol_table();
  return table;
}

Vocab Vocab::from_openai_bpe(const std::string& gz_path, int vocab_size) {
  if (vocab_size < kMinVocabSize || vocab_size > kOpenAIVocabSize)
    throw Error("vocabulary size " + std::to_string(vocab_size) + " is out of range (expected " +
                std::to_string(kMinVocabSize) + ".." + std::to_string(kOpenAIVocabSize) + ")");
  const int merge_count = vocab_size - kMinVocabSize;
  static_assert(kOpenAIVocabSize - kMinVocabSize == kOpenAIMerges);
  const std::vector<std::string> lines = util::split_lines(read_gzip(gz_path));
  if (lines.size() < static_cast<size_t>(kOpenAIMerges) + 1)
    throw Error(gz_path + ": expected a header line and at least " + std::to_string(kOpenAIMerges) + " merges, found " +
                std::to_string(lines.size()) + " line(s)");
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<int> merge_lines;
  for (int i = 1; i <= merge_count; ++i) {
    merges.push_back(parse_merge(lines[i], gz_path, i + 1));
    merge_lines.push_back(i + 1);
  }
  // The reference builds a list and a dict from it: on a repeated string the later id wins.
  std::vector<std::string> symbols;
  for (int i = 0; i < 256; ++i) symbols.push_back(symbol_utf8(i));
  for (int i = 0; i < 256; ++i) symbols.push_back(symbol_utf8(i) + "</w>");
  for (const auto& m : merges) symbols.push_back(m.first + m.second);
  symbols.push_back(kSot);
  symbols.push_back(kEot);
  std::unordered_map<std::string, int32_t> encoder;
  for (size_t i = 0; i < symbols.size(); ++i) encoder[symbols[i]] = static_cast<int32_t>(i);
  Vocab v;
  v.id_bytes_.resize(symbols.size());
  v.build(encoder, merges, merge_lines, gz_path);
  // Ids that a later duplicate shadowed still decode to their own symbol.
  for (size_t i = 0; i < symbols.size(); ++i) v.id_bytes_[i] = symbol_bytes(symbols[i], gz_path);
  return v;
}

Vocab Vocab::from_hf(const std::string& vocab_json_path, const std::string& merges_path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_file(vocab_json_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(vocab_json_path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(vocab_json_path + ": expected a JSON object {token: id}");
  std::unordered_map<std::string, int32_t> encoder;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > 10'000'000)
      throw Error(vocab_json_path + ": token \"" + it.key() + "\": expected a non-negative integer id");
    encoder[it.key()] = it.value().get<int32_t>();
  }
  const std::vector<std::string> lines = util::split_lines(util::read_file(merges_path));
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<int> merge_lines;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (i == 0 && line.rfind("#version", 0) == 0) continue;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank (e.g. final)
    merges.push_back(parse_merge(line, merges_path, static_cast<int>(i + 1)));
    merge_lines.push_back(static_cast<int>(i + 1));
  }
  Vocab v;
  v.build(encoder, merges, merge_lines, merges_path);
  return v;
}

void Vocab::build(const std::unordered_map<std::string, int32_t>& encoder,
                  const std::vector<std::pair<std::string, std::string>>& merges, const std::vector<int>& merge_lines,
                  const std::string& source) {
  // `where` is called only on failure, so the common path builds no message.
  auto lookup = [&](const std::string& s, auto&& where) -> int32_t {
    auto it = encoder.find(s);
    if (it == encoder.end()) throw Error(where() + ": symbol \"" + s + "\" is not in the vocabulary");
    return it->second;
  };
  auto fixed = [](std::string text) { return [text] { return text; }; };
  int32_t max_id = -1;
  for (const auto& [s, id] : encoder) max_id = std::max(max_id, id);
  if (id_bytes_.size() < static_cast<size_t>(max_id) + 1) id_bytes_.resize(static_cast<size_t>(max_id) + 1);
  for (const auto& [s, id] : encoder) id_bytes_[static_cast<size_t>(id)] = symbol_bytes(s, source);
  const auto& table = byte_symbol_table();
  for (int i = 0; i < 256; ++i) {
    const int b = symbol_to_byte(table[i]);
    byte_ids_[b] = lookup(symbol_utf8(i), fixed(source + ": byte symbol"));
    byte_end_ids_[b] = lookup(symbol_utf8(i) + "</w>", fixed(source + ": byte symbol"));
  }
  sot_ = lookup(kSot, fixed(source + ": special token"));
  eot_ = lookup(kEot, fixed(source + ": special token"));
  int bits = 4;
  while ((size_t{1} << bits) < 2 * merges.size() + 2) ++bits;
  merge_table_.assign(size_t{1} << bits, MergeSlot{});
  merge_mask_ = (uint64_t{1} << bits) - 1;
  merge_shift_ = 64 - bits;
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    auto where = [&] { return source + ":" + std::to_string(merge_lines[r]); };
    insert_merge(pair_key(lookup(a, where), lookup(b, where)), Merge{static_cast<int32_t>(r), lookup(a + b, where)});
  }
}

void Vocab::insert_merge(uint64_t key, Merge m) {
  for (uint64_t slot = slot_of(key);; slot = (slot + 1) & merge_mask_) {
    MergeSlot& s = merge_table_[slot];
    if (s.key == key) {  // a repeated pair: the later rank wins, as in the reference's dict
      s.merge = m;
      return;
    }
    if (s.key == kEmptyKey) {
      s = MergeSlot{key, m};
      ++merge_count_;
      return;
    }
  }
}

}  // namespace clip::text
