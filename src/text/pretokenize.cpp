#include "text/pretokenize.h"

#include <unicode/uchar.h>

namespace clip::text {
namespace {

enum class CharClass { kSpace, kLetter, kNumber, kOther, kSkipped };

CharClass classify(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (is_regex_space(c)) return CharClass::kSpace;
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  // Under IGNORECASE, `regex` matches U+0345 (which case-folds to a letter) by neither
  // [\p{L}] nor [^\s\p{L}\p{N}]: it falls between matches and is dropped.
  if (c == 0x345) return CharClass::kSkipped;
  return CharClass::kOther;
}

// Case-insensitive comparison of one code point with a lowercase ASCII pattern character.
// The text is lowercased before pre-tokenization, so the only extra match left is
// U+017F LATIN SMALL LETTER LONG S, which case-folds to 's'.
bool folds_to(char32_t c, char pattern) {
  return c == static_cast<char32_t>(pattern) || (pattern == 's' && c == 0x17F) ||
         (pattern >= 'a' && pattern <= 'z' && c == static_cast<char32_t>(pattern - 'a' + 'A'));
}

bool equals_at(std::u32string_view text, size_t pos, std::string_view pattern) {
  for (size_t i = 0; i < pattern.size(); ++i)
    if (text[pos + i] != static_cast<char32_t>(pattern[i])) return false;
  return true;
}

bool matches_at(std::u32string_view text, size_t pos, std::string_view pattern) {
  if (text.size() - pos < pattern.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i)
    if (!folds_to(text[pos + i], pattern[i])) return false;
  return true;
}

}  // namespace

bool is_regex_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

bool is_python_space(char32_t c) { return is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }

std::vector<Pretoken> pretokenize(std::u32string_view text) {
  static constexpr std::string_view kStartOfText = "<|startoftext|>";
  static constexpr std::string_view kEndOfText = "<|endoftext|>";
  static constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  std::vector<Pretoken> out;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    // Alternatives in the regex's order: the first that matches at i wins.
    if (text[i] == '<') {
      // A case-insensitive match is one pre-token, but only the exact literal is the special
      // token; any other spelling (e.g. with U+017F) goes through BPE like the reference's cache.
      bool matched = false;
      for (const auto& [literal, kind] : {std::pair{kStartOfText, PretokenKind::kStartOfText},
                                          std::pair{kEndOfText, PretokenKind::kEndOfText}}) {
        if (matches_at(text, i, literal)) {
          out.push_back({i, i + literal.size(), equals_at(text, i, literal) ? kind : PretokenKind::kText});
          i += literal.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    if (text[i] == '\'') {
      bool matched = false;
      for (std::string_view c : kContractions) {
        if (matches_at(text, i, c)) {
          out.push_back({i, i + c.size(), PretokenKind::kText});
          i += c.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    const CharClass cls = classify(text[i]);
    if (cls == CharClass::kSpace || cls == CharClass::kSkipped) {
      ++i;
      continue;
    }
    if (cls == CharClass::kNumber) {
      out.push_back({i, i + 1, PretokenKind::kText});
      ++i;
      continue;
    }
    // A run of letters, or a run of "other" characters (neither space, letter nor number).
    size_t j = i + 1;
    while (j < n && classify(text[j]) == cls) ++j;
    out.push_back({i, j, PretokenKind::kText});
    i = j;
  }
  return out;
}

}  // namespace clip::text
