// UTF-8: the one decoder the tokenizer, the pickle reader and the index share, and an encoder.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace clip::util {

// Whether an encoded surrogate (U+D800..U+DFFF as ED A0..BF xx) counts as a character.
// kReject is well-formed UTF-8 (Unicode Table 3-7; Python's "strict"; JSON text needs it);
// kAccept is Python's "surrogatepass", which pickles written by Python may hold.
enum class Surrogates { kReject, kAccept };

// One step of decoding at `bytes[at]` (at < bytes.size()).
struct Utf8Step {
  char32_t code_point;  // meaningful when valid
  size_t length;        // bytes consumed: the sequence, or its maximal ill-formed subpart (>= 1)
  bool valid;
};

// Overlongs, code points above U+10FFFF and truncated sequences are invalid; an invalid step's
// length is the maximal ill-formed subpart, so each such part becomes one U+FFFD exactly as in
// Python's bytes.decode("utf-8", errors="replace").
inline Utf8Step decode_utf8_at(std::string_view bytes, size_t at, Surrogates surrogates = Surrogates::kReject) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  const unsigned c = s[at];
  if (c < 0x80) return {c, 1, true};
  // Length and the allowed range of the second byte (Unicode Table 3-7).
  int len;
  unsigned lo = 0x80, hi = 0xBF;
  char32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED && surrogates == Surrogates::kReject) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {0, 1, false};
  }
  size_t j = at + 1;
  for (int k = 1; k < len; ++k, ++j) {
    const unsigned b = j < n ? s[j] : 0x100;
    const unsigned l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
    if (b < l || b > h) return {0, j - at, false};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, j - at, true};
}

bool is_valid_utf8(std::string_view bytes, Surrogates surrogates = Surrogates::kReject);

// Appends `c` (at most U+10FFFF) as UTF-8; a surrogate is written as its 3-byte form.
void append_utf8(std::string& out, char32_t c);

}  // namespace clip::util
