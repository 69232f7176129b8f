// CLIP's pre-tokenization: the regex
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// with IGNORECASE (Python `regex`), as a hand-written scanner over code points.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clip::text {

enum class PretokenKind { kText, kStartOfText, kEndOfText };

struct Pretoken {
  size_t begin, end;  // code point range in the input
  PretokenKind kind;
};

std::vector<Pretoken> pretokenize(std::u32string_view text);

// Unicode White_Space (what `\s` matches in Python's `regex`).
bool is_regex_space(char32_t c);
// What Python's str.isspace() accepts (White_Space plus U+001C..U+001F), used by str.strip().
bool is_python_space(char32_t c);

}  // namespace clip::text
