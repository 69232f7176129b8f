// The text cleaning CLIP applies before pre-tokenization:
//   ftfy.fix_text -> html.unescape twice -> strip -> \s+ to ' ' -> strip -> str.lower()
#pragma once

#include <string>
#include <string_view>

namespace clip::text {

// Any bytes in (invalid UTF-8 becomes U+FFFD, as Python's errors="replace"); code points out.
std::u32string clean_text(std::string_view utf8);

// The fast path for plain ASCII that no ftfy or HTML step would change (bytes 0x20..0x7E except
// '&', and tab, LF, FF, CR): writes the cleaned text to `out` and returns true. Otherwise returns
// false and `out` is unspecified; use clean_text. Both give the same result where both apply.
bool clean_ascii_fast(std::string_view text, std::string& out);

// Python's str.lower(): full Unicode case mapping (İ -> i + U+0307, final sigma).
std::u32string python_lower(std::u32string_view text);

// Python's str.strip() with no argument.
std::u32string_view python_strip(std::u32string_view text);

// Python `regex`: re.sub(r'\s+', ' ', text).
std::u32string collapse_whitespace(std::u32string_view text);

}  // namespace clip::text
