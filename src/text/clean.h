// The text cleaning CLIP applies before pre-tokenization:
//   ftfy.fix_text -> html.unescape twice -> strip -> \s+ to ' ' -> strip -> str.lower()
#pragma once

#include <string>
#include <string_view>

namespace clip::text {

// Any bytes in (invalid UTF-8 becomes U+FFFD, as Python's errors="replace"); code points out.
std::u32string clean_text(std::string_view utf8);

// Python's str.lower(): full Unicode case mapping (İ -> i + U+0307, final sigma).
std::u32string python_lower(std::u32string_view text);

// Python's str.strip() with no argument.
std::u32string_view python_strip(std::u32string_view text);

// Python `regex`: re.sub(r'\s+', ' ', text).
std::u32string collapse_whitespace(std::u32string_view text);

}  // namespace clip::text
