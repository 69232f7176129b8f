// CLIP's pre-tokenization: the regex
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// with IGNORECASE (Python `regex`), as a hand-written scanner over code points (char32_t) or,
// on the ASCII fast path, bytes (char).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clip::text {

enum class PretokenKind { kText, kStartOfText, kEndOfText };

struct Pretoken {
  size_t begin, end;  // character range in the input
  PretokenKind kind;
};

enum class CharClass { kSpace, kLetter, kNumber, kOther, kSkipped };

// Unicode White_Space (what `\s` matches in Python's `regex`), written out: the set has not
// changed since Unicode 6.3 and a test checks it against ICU's for every code point.
inline bool is_regex_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  if (c < 0x1680) return c == 0x85 || c == 0xA0;
  return c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}
// What Python's str.isspace() accepts (White_Space plus U+001C..U+001F), used by str.strip().
inline bool is_python_space(char32_t c) { return is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }
// The regex's view of a character: space, letter (\p{L}), number (\p{N}), other, or skipped.
CharClass classify_non_ascii(char32_t c);

inline CharClass classify(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  return classify_non_ascii(c);
}

namespace detail {
// Case-insensitive comparison of one character with a lowercase ASCII pattern character. The
// text is lowercased before pre-tokenization, so the only extra match left is U+017F LATIN
// SMALL LETTER LONG S, which case-folds to 's'.
inline bool folds_to(char32_t c, char pattern) {
  return c == static_cast<char32_t>(pattern) || (pattern == 's' && c == 0x17F) ||
         (pattern >= 'a' && pattern <= 'z' && c == static_cast<char32_t>(pattern - 'a' + 'A'));
}

template <class Char>
char32_t at(std::basic_string_view<Char> text, size_t i) {
  if constexpr (sizeof(Char) == 1) return static_cast<unsigned char>(text[i]);
  else return text[i];
}

template <class Char>
bool matches_at(std::basic_string_view<Char> text, size_t pos, std::string_view pattern, bool& exact) {
  if (text.size() - pos < pattern.size()) return false;
  exact = true;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char32_t c = at(text, pos + i);
    if (!folds_to(c, pattern[i])) return false;
    exact &= c == static_cast<char32_t>(pattern[i]);
  }
  return true;
}
}  // namespace detail

// Calls emit(begin, end, kind) for each pre-token, in order.
template <class Char, class Emit>
void for_each_pretoken(std::basic_string_view<Char> text, Emit&& emit) {
  static constexpr std::string_view kSpecials[] = {"<|startoftext|>", "<|endoftext|>"};
  static constexpr PretokenKind kSpecialKinds[] = {PretokenKind::kStartOfText, PretokenKind::kEndOfText};
  static constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = detail::at(text, i);
    // Alternatives in the regex's order: the first that matches at i wins.
    if (c == '<' || c == '\'') {
      bool matched = false, exact = false;
      if (c == '<') {
        // A case-insensitive match is one pre-token, but only the exact literal is the special
        // token; another spelling (with U+017F) goes through BPE, as in the reference.
        for (int k = 0; k < 2 && !matched; ++k) {
          if (detail::matches_at(text, i, kSpecials[k], exact)) {
            emit(i, i + kSpecials[k].size(), exact ? kSpecialKinds[k] : PretokenKind::kText);
            i += kSpecials[k].size();
            matched = true;
          }
        }
      } else {
        for (std::string_view con : kContractions) {
          if (detail::matches_at(text, i, con, exact)) {
            emit(i, i + con.size(), PretokenKind::kText);
            i += con.size();
            matched = true;
            break;
          }
        }
      }
      if (matched) continue;
    }
    const CharClass cls = classify(c);
    if (cls == CharClass::kSpace || cls == CharClass::kSkipped) {
      ++i;
      continue;
    }
    if (cls == CharClass::kNumber) {  // digits come one at a time
      emit(i, i + 1, PretokenKind::kText);
      ++i;
      continue;
    }
    // A run of letters, or a run of "other" characters (neither space, letter nor number).
    size_t j = i + 1;
    while (j < n && classify(detail::at(text, j)) == cls) ++j;
    emit(i, j, PretokenKind::kText);
    i = j;
  }
}

// The pre-tokens of a text, as a list (for tests and tools).
std::vector<Pretoken> pretokenize(std::u32string_view text);

}  // namespace clip::text
