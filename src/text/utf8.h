// UTF-8 <-> code points, with Python's errors="replace" semantics on invalid input.
#pragma once

#include <string>
#include <string_view>

#include "util/utf8.h"

namespace clip::text {

// Decodes any byte sequence (util::decode_utf8_at). Each maximal ill-formed subsequence becomes one U+FFFD,
// exactly as Python's bytes.decode("utf-8", errors="replace") (surrogates and overlongs are ill-formed).
std::u32string utf8_to_u32(std::string_view bytes);
// The same into `out` (replacing its contents), which keeps its capacity.
void utf8_to_u32(std::string_view bytes, std::u32string& out);

// Encodes code points as UTF-8 (input must hold no surrogates or values above U+10FFFF).
std::string u32_to_utf8(std::u32string_view text);
using util::append_utf8;  // one code point

bool is_ascii(std::string_view bytes);

}  // namespace clip::text
