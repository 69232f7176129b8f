// The text cleaning CLIP applies before pre-tokenization:
//   ftfy.fix_text -> html.unescape twice -> strip -> \s+ to ' ' -> strip -> str.lower()
#pragma once

#include <string>
#include <string_view>

namespace clip::text {

// Any bytes in (invalid UTF-8 becomes U+FFFD, as Python's errors="replace"); code points out.
// Each step in full, in the reference's order: the definition the fast path is tested against.
std::u32string clean_text(std::string_view utf8);

// clean_text's result into `out` (replacing its contents), faster: steps that would change
// nothing are skipped (ftfy when ftfy_leaves_unchanged, html_unescape without '&'), and the
// rest work in place, so a reused `out` means no allocation for most texts.
void clean_text_fast(std::string_view utf8, std::u32string& out);

// The fast path for plain ASCII that no ftfy or HTML step would change (bytes 0x20..0x7E except
// '&', and tab, LF, FF, CR): writes the cleaned text to `out` and returns true. Otherwise returns
// false and `out` is unspecified; use clean_text. Both give the same result where both apply.
bool clean_ascii_fast(std::string_view text, std::string& out);

// encode's ASCII path: for the texts clean_ascii_fast accepts, writes the text lowercased to
// out[0, text.size()), its whitespace left as it is, and returns true (otherwise false, `out`
// unspecified). The
// pre-tokenizer skips whitespace and no pre-token holds any, so this has the same pre-tokens as
// the cleaned text without the work of collapsing and stripping.
bool lower_ascii_fast(std::string_view text, char* out);

// Python's str.lower(): full Unicode case mapping (İ -> i + U+0307, final sigma).
std::u32string python_lower(std::u32string_view text);
// The same in place, one character at a time where that is exact: the simple lowercase mapping
// equals the full one for every character but U+0130, and only U+03A3 (final sigma) depends on
// context; a text holding either goes through python_lower.
void python_lower_in_place(std::u32string& text);

// Python's str.strip() with no argument.
std::u32string_view python_strip(std::u32string_view text);

// Python `regex`: re.sub(r'\s+', ' ', text).
std::u32string collapse_whitespace(std::u32string_view text);

// text = python_strip(collapse_whitespace(python_strip(text))), in place.
void strip_and_collapse_in_place(std::u32string& text);

}  // namespace clip::text
