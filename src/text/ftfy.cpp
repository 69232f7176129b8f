// ftfy.fix_text with ftfy 6.3.1's default TextFixerConfig, reimplemented on code points.
//
// fix_text cuts the text into segments (each ends after a '\n', at most 1,000,000 code points)
// and fixes each one by repeating this sequence until the segment stops changing:
//
//   unescape_html            (only while no segment so far has held a literal '<')
//   fix_encoding             (mojibake repair, itself repeated until nothing changes)
//   fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
//   fix_surrogates, remove_terminal_escapes, remove_control_chars, NFC
//
// fix_encoding, one step: text that is ASCII, or that the "badness" heuristic does not flag, is
// left alone. Otherwise, for each single-byte code page ftfy knows (Latin-1, the "sloppy"
// Windows-125x pages, ISO-8859-2, MacRoman, CP437; in that order) that can encode the text:
// encode it, restore 0xA0 bytes that became spaces, mark lossy sequences (sloppy pages only),
// and decode the bytes as UTF-8 (or ftfy's "utf-8-variants" when they hold 0xED or 0xC0); the
// first that decodes wins. Failing that: fix mojibake runs embedded in otherwise good text
// (decode_inconsistent_utf8); then reread Latin-1 text as Windows-1252; then map C1 controls
// to Windows-1252.
//
// The character classes and byte patterns below are ftfy's (ftfy/badness.py, ftfy/chardata.py,
// ftfy/fixes.py), written out as code point ranges and explicit matchers instead of regexes.
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "text/ftfy.h"

namespace clip::text {

namespace detail {
// Defined in html_unescape.cpp, next to the generated HTML5 entity table.
bool ftfy_entity_lookup(std::u32string_view name, std::u32string& out);
}  // namespace detail

namespace {

// ---------------------------------------------------------------------------------------------
// Code pages (generated from Python's codecs by tools/gen_ftfy_charmaps.py)

struct CharmapReverse {
  char32_t cp;
  unsigned char byte;
};

struct Charmap {
  const char* name;
  const char32_t* high;  // bytes 0x80..0xFF
  char32_t sub;          // what byte 0x1A decodes to
  const CharmapReverse* reverse;
  size_t reverse_size;
  bool sloppy;      // replace_lossy_sequences applies
  bool restore_a0;  // restore_byte_a0 applies (all but MacRoman)
};

#include "text/ftfy_charmaps.inc"

constexpr size_t kMaxSegment = 1000000;  // TextFixerConfig.max_decode_length
// Guards that real text never reaches; they only bound pathological inputs.
constexpr int kMaxRecursion = 32;
constexpr int kMaxIterations = 1000;

// Encodes `text` in code page `cm`; false when some character is not in it.
bool charmap_encode(std::u32string_view text, const Charmap& cm, std::string& out) {
  out.clear();
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80 && c != 0x1A) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    const CharmapReverse* end = cm.reverse + cm.reverse_size;
    const CharmapReverse* it =
        std::lower_bound(cm.reverse, end, c, [](const CharmapReverse& r, char32_t key) { return r.cp < key; });
    if (it == end || it->cp != c) return false;
    out.push_back(static_cast<char>(it->byte));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// UTF-8 decoding, strict (Python's "utf-8") or ftfy's "utf-8-variants" (also CESU-8 surrogate
// pairs and Java's C0 80 for U+0000). Any other malformation makes the whole decode fail.

inline uint8_t byte_at(const std::string& b, size_t i) { return static_cast<uint8_t>(b[i]); }
inline bool in_range(uint8_t b, uint8_t lo, uint8_t hi) { return b >= lo && b <= hi; }
inline bool is_cont(uint8_t b) { return in_range(b, 0x80, 0xBF); }

bool decode_utf8_strict(const std::string& bytes, bool variants, std::u32string& out) {
  out.clear();
  out.reserve(bytes.size());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b0 = byte_at(bytes, i);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    if (variants) {
      if (b0 == 0xC0 && i + 1 < n && byte_at(bytes, i + 1) == 0x80) {
        out.push_back(0);
        i += 2;
        continue;
      }
      if (b0 == 0xED && i + 5 < n && in_range(byte_at(bytes, i + 1), 0xA0, 0xAF) && is_cont(byte_at(bytes, i + 2)) &&
          byte_at(bytes, i + 3) == 0xED && in_range(byte_at(bytes, i + 4), 0xB0, 0xBF) &&
          is_cont(byte_at(bytes, i + 5))) {
        const char32_t cp = 0x10000 + ((static_cast<char32_t>(byte_at(bytes, i + 1)) & 0x0F) << 16) +
                            ((static_cast<char32_t>(byte_at(bytes, i + 2)) & 0x3F) << 10) +
                            ((static_cast<char32_t>(byte_at(bytes, i + 4)) & 0x0F) << 6) +
                            (static_cast<char32_t>(byte_at(bytes, i + 5)) & 0x3F);
        out.push_back(cp);
        i += 6;
        continue;
      }
    }
    int len = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (in_range(b0, 0xC2, 0xDF)) {
      len = 2;
    } else if (in_range(b0, 0xE0, 0xEF)) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (in_range(b0, 0xF0, 0xF4)) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(len) > n) return false;
    const uint8_t b1 = byte_at(bytes, i + 1);
    if (!in_range(b1, lo, hi)) return false;
    char32_t cp = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    cp = (cp << 6) | (b1 & 0x3F);
    for (int k = 2; k < len; ++k) {
      const uint8_t bk = byte_at(bytes, i + static_cast<size_t>(k));
      if (!is_cont(bk)) return false;
      cp = (cp << 6) | (bk & 0x3F);
    }
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Byte-level repairs used inside fix_encoding

// ALTERED_UTF8_RE: a UTF-8 sequence that would be valid if a 0x20 were 0xA0. Returns its length
// at `i` (0: none). Alternatives are tried in ftfy's order.
size_t altered_utf8_at(const std::string& b, size_t i) {
  const size_t n = b.size();
  auto cont_not_85_a0 = [](uint8_t x) {
    return in_range(x, 0x80, 0x84) || in_range(x, 0x86, 0x9F) || in_range(x, 0xA1, 0xBF);
  };
  const uint8_t b0 = byte_at(b, i);
  if (i + 1 < n && (b0 == 0xC2 || b0 == 0xC3 || b0 == 0xC5 || b0 == 0xCE || b0 == 0xD0 || b0 == 0xD9) &&
      byte_at(b, i + 1) == 0x20)
    return 2;
  if (i + 2 < n) {
    const uint8_t b1 = byte_at(b, i + 1), b2 = byte_at(b, i + 2);
    if ((b0 == 0xE2 || b0 == 0xE3) && b1 == 0x20 && cont_not_85_a0(b2)) return 3;
    if (in_range(b0, 0xE0, 0xE3) && cont_not_85_a0(b1) && b2 == 0x20) return 3;
  }
  if (b0 == 0xF0 && i + 3 < n) {
    const uint8_t b1 = byte_at(b, i + 1), b2 = byte_at(b, i + 2), b3 = byte_at(b, i + 3);
    if (b1 == 0x20 && is_cont(b2) && is_cont(b3)) return 4;
    if (is_cont(b1) && b2 == 0x20 && is_cont(b3)) return 4;
    if (is_cont(b1) && is_cont(b2) && b3 == 0x20) return 4;
  }
  return 0;
}

bool has_altered_utf8(const std::string& b) {
  for (size_t i = 0; i < b.size(); ++i)
    if (altered_utf8_at(b, i) != 0) return true;
  return false;
}

bool starts_with_at(const std::string& b, size_t i, std::string_view s) {
  return b.size() >= i + s.size() && std::string_view(b).substr(i, s.size()) == s;
}

// restore_byte_a0: first "C3 20" (a lone "Ã ", i.e. "à" whose A0 became a space) gains its A0
// back unless a Portuguese contraction or another space follows; then every ALTERED_UTF8 match
// gets its spaces turned back into A0.
std::string restore_byte_a0(const std::string& in) {
  std::string step;
  step.reserve(in.size() + 8);
  for (size_t i = 0; i < in.size();) {
    if (byte_at(in, i) == 0xC3 && i + 1 < in.size() && byte_at(in, i + 1) == 0x20) {
      const size_t k = i + 2;
      const bool keep = starts_with_at(in, k, " ") || starts_with_at(in, k, "quele") ||
                        starts_with_at(in, k, "quela") || starts_with_at(in, k, "quilo") || starts_with_at(in, k, "s ");
      if (!keep) {
        step += "\xC3\xA0 ";
        i += 2;
        continue;
      }
    }
    step.push_back(in[i]);
    ++i;
  }
  std::string out;
  out.reserve(step.size());
  for (size_t i = 0; i < step.size();) {
    const size_t len = altered_utf8_at(step, i);
    if (len == 0) {
      out.push_back(step[i]);
      ++i;
      continue;
    }
    for (size_t k = 0; k < len; ++k) out.push_back(step[i + k] == ' ' ? '\xA0' : step[i + k]);
    i += len;
  }
  return out;
}

// LOSSY_UTF8_RE: a UTF-8 (or CESU-8) sequence some of whose bytes were lost (0x1A, which the
// sloppy code pages use for U+FFFD, or at most one '?'). Returns its length at `i` (0: none).
size_t lossy_utf8_at(const std::string& b, size_t i) {
  const size_t n = b.size();
  auto at = [&](size_t k) -> int { return i + k < n ? byte_at(b, i + k) : -1; };
  auto sub = [](int x) { return x == 0x1A; };
  auto sub_q = [](int x) { return x == 0x1A || x == '?'; };
  auto sub_c = [](int x) { return x == 0x1A || (x >= 0x80 && x <= 0xBF); };
  auto sub_q_c = [](int x) { return x == 0x1A || x == '?' || (x >= 0x80 && x <= 0xBF); };
  auto rng = [](int x, int lo, int hi) { return x >= lo && x <= hi; };
  const int b0 = at(0), b1 = at(1), b2 = at(2), b3 = at(3), b4 = at(4), b5 = at(5);
  if (rng(b0, 0xC2, 0xDF) && sub(b1)) return 2;
  if (rng(b0, 0xC2, 0xC3) && b1 == '?') return 2;
  if (b0 == 0xED && rng(b1, 0xA0, 0xAF) && sub_q(b2) && b3 == 0xED && rng(b4, 0xB0, 0xBF) && sub_q_c(b5)) return 6;
  if (b0 == 0xED && rng(b1, 0xA0, 0xAF) && sub_q_c(b2) && b3 == 0xED && rng(b4, 0xB0, 0xBF) && sub_q(b5)) return 6;
  if (rng(b0, 0xE0, 0xEF) && sub_q(b1) && sub_c(b2)) return 3;
  if (rng(b0, 0xE0, 0xEF) && sub_c(b1) && sub_q(b2)) return 3;
  if (rng(b0, 0xF0, 0xF4)) {
    if (sub_q(b1) && sub_c(b2) && sub_c(b3)) return 4;
    if (sub_c(b1) && sub_q(b2) && sub_c(b3)) return 4;
    if (sub_c(b1) && sub_c(b2) && sub_q(b3)) return 4;
  }
  if (b0 == 0x1A) return 1;
  return 0;
}

std::string replace_lossy_sequences(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const size_t len = lossy_utf8_at(in, i);
    if (len == 0) {
      out.push_back(in[i]);
      ++i;
    } else {
      out += "\xEF\xBF\xBD";
      i += len;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Character classes of ftfy's heuristics (MOJIBAKE_CATEGORIES in badness.py, UTF8_CLUES in
// chardata.py) as bit masks.

enum : uint32_t {
  kCommon = 1u << 0,
  kC1 = 1u << 1,
  kBad = 1u << 2,
  kLaw = 1u << 3,
  kCurrency = 1u << 4,
  kStartPunct = 1u << 5,
  kEndPunct = 1u << 6,
  kNumeric = 1u << 7,
  kKaomoji = 1u << 8,
  kUpperAccented = 1u << 9,
  kLowerAccented = 1u << 10,
  kUpperCommon = 1u << 11,
  kLowerCommon = 1u << 12,
  kBox = 1u << 13,
  kFirstOf2 = 1u << 14,      // UTF-8 lead byte of 2, as some code page shows it
  kFirstOf3 = 1u << 15,      // ... of 3
  kFirstOf4 = 1u << 16,      // ... of 4
  kContinuation = 1u << 17,  // UTF-8 continuation byte (or a space standing for A0)
  kContStrict = 1u << 18,    // ... excluding spaces, dashes, quotes, bullet, ellipsis
};

struct ClassRange {
  char32_t lo, hi;
  uint32_t bits;
};

constexpr ClassRange kClassRanges[] = {
    // common
    {0xA0, 0xA0, kCommon},
    {0xAD, 0xAD, kCommon},
    {0xB4, 0xB4, kCommon},
    {0xB7, 0xB7, kCommon},
    {0x2013, 0x2015, kCommon},
    {0x2019, 0x2019, kCommon},
    {0x2026, 0x2026, kCommon},
    // C1 controls
    {0x80, 0x9F, kC1},
    // bad: characters nearly only seen in mojibake
    {0xA4, 0xA4, kBad},
    {0xA6, 0xA6, kBad},
    {0xA8, 0xA8, kBad},
    {0xAA, 0xAA, kBad},
    {0xAC, 0xAC, kBad},
    {0xAF, 0xAF, kBad},
    {0xB8, 0xB8, kBad},
    {0xBA, 0xBA, kBad},
    {0x192, 0x192, kBad},
    {0x2C6, 0x2C7, kBad},
    {0x2D8, 0x2D8, kBad},
    {0x2DB, 0x2DC, kBad},
    {0x2020, 0x2021, kBad},
    {0x2030, 0x2030, kBad},
    {0x2310, 0x2310, kBad},
    {0x25CA, 0x25CA, kBad},
    {0xFFFD, 0xFFFD, kBad},
    // law
    {0xA7, 0xA7, kLaw},
    {0xB6, 0xB6, kLaw},
    // currency
    {0xA2, 0xA3, kCurrency},
    {0xA5, 0xA5, kCurrency},
    {0x20A7, 0x20A7, kCurrency},
    {0x20AC, 0x20AC, kCurrency},
    // start punctuation
    {0xA1, 0xA1, kStartPunct},
    {0xA9, 0xA9, kStartPunct},
    {0xAB, 0xAB, kStartPunct},
    {0xBF, 0xBF, kStartPunct},
    {0x384, 0x385, kStartPunct},
    {0x2018, 0x2018, kStartPunct},
    {0x201A, 0x201A, kStartPunct},
    {0x201C, 0x201C, kStartPunct},
    {0x201E, 0x201E, kStartPunct},
    {0x2022, 0x2022, kStartPunct},
    {0x2039, 0x2039, kStartPunct},
    {0xF8FF, 0xF8FF, kStartPunct},
    // end punctuation
    {0xAE, 0xAE, kEndPunct},
    {0xBB, 0xBB, kEndPunct},
    {0x2DD, 0x2DD, kEndPunct},
    {0x201D, 0x201D, kEndPunct},
    {0x203A, 0x203A, kEndPunct},
    {0x2122, 0x2122, kEndPunct},
    // numeric
    {0xB1, 0xB3, kNumeric},
    {0xB5, 0xB5, kNumeric},
    {0xB9, 0xB9, kNumeric},
    {0xBC, 0xBE, kNumeric},
    {0xD7, 0xD7, kNumeric},
    {0xF7, 0xF7, kNumeric},
    {0x2044, 0x2044, kNumeric},
    {0x2116, 0x2116, kNumeric},
    {0x2202, 0x2202, kNumeric},
    {0x2206, 0x2206, kNumeric},
    {0x220F, 0x220F, kNumeric},
    {0x2211, 0x2211, kNumeric},
    {0x221A, 0x221A, kNumeric},
    {0x221E, 0x221E, kNumeric},
    {0x2229, 0x2229, kNumeric},
    {0x222B, 0x222B, kNumeric},
    {0x2248, 0x2248, kNumeric},
    {0x2260, 0x2261, kNumeric},
    {0x2264, 0x2265, kNumeric},
    // kaomoji: letters that show up in emoticons
    {0xB0, 0xB0, kKaomoji},
    {0xD2, 0xD6, kKaomoji},
    {0xD9, 0xDC, kKaomoji},
    {0xF2, 0xF6, kKaomoji},
    {0xF8, 0xFC, kKaomoji},
    {0x14C, 0x14C, kKaomoji},
    {0x150, 0x150, kKaomoji},
    {0x16A, 0x16A, kKaomoji},
    {0x172, 0x172, kKaomoji},
    // upper-case accented letters
    {0xC0, 0xD1, kUpperAccented},
    {0xD8, 0xD8, kUpperAccented},
    {0xDC, 0xDD, kUpperAccented},
    {0x100, 0x100, kUpperAccented},
    {0x102, 0x102, kUpperAccented},
    {0x104, 0x104, kUpperAccented},
    {0x106, 0x106, kUpperAccented},
    {0x10C, 0x10C, kUpperAccented},
    {0x10E, 0x10E, kUpperAccented},
    {0x110, 0x110, kUpperAccented},
    {0x112, 0x112, kUpperAccented},
    {0x116, 0x116, kUpperAccented},
    {0x118, 0x118, kUpperAccented},
    {0x11A, 0x11A, kUpperAccented},
    {0x11E, 0x11E, kUpperAccented},
    {0x122, 0x122, kUpperAccented},
    {0x12A, 0x12A, kUpperAccented},
    {0x130, 0x130, kUpperAccented},
    {0x136, 0x136, kUpperAccented},
    {0x139, 0x139, kUpperAccented},
    {0x13B, 0x13B, kUpperAccented},
    {0x13D, 0x13D, kUpperAccented},
    {0x141, 0x141, kUpperAccented},
    {0x143, 0x143, kUpperAccented},
    {0x145, 0x145, kUpperAccented},
    {0x147, 0x147, kUpperAccented},
    {0x152, 0x152, kUpperAccented},
    {0x158, 0x158, kUpperAccented},
    {0x15A, 0x15A, kUpperAccented},
    {0x15E, 0x15E, kUpperAccented},
    {0x160, 0x160, kUpperAccented},
    {0x162, 0x162, kUpperAccented},
    {0x164, 0x164, kUpperAccented},
    {0x16E, 0x16E, kUpperAccented},
    {0x170, 0x170, kUpperAccented},
    {0x178, 0x179, kUpperAccented},
    {0x17B, 0x17B, kUpperAccented},
    {0x17D, 0x17D, kUpperAccented},
    {0x490, 0x490, kUpperAccented},
    // lower-case accented letters
    {0xDF, 0xF1, kLowerAccented},
    {0xFC, 0xFC, kLowerAccented},
    {0x101, 0x101, kLowerAccented},
    {0x103, 0x103, kLowerAccented},
    {0x105, 0x105, kLowerAccented},
    {0x107, 0x107, kLowerAccented},
    {0x10D, 0x10D, kLowerAccented},
    {0x10F, 0x10F, kLowerAccented},
    {0x111, 0x111, kLowerAccented},
    {0x113, 0x113, kLowerAccented},
    {0x117, 0x117, kLowerAccented},
    {0x119, 0x119, kLowerAccented},
    {0x11B, 0x11B, kLowerAccented},
    {0x11F, 0x11F, kLowerAccented},
    {0x123, 0x123, kLowerAccented},
    {0x12B, 0x12B, kLowerAccented},
    {0x12F, 0x12F, kLowerAccented},
    {0x137, 0x137, kLowerAccented},
    {0x13A, 0x13A, kLowerAccented},
    {0x13C, 0x13C, kLowerAccented},
    {0x13E, 0x13E, kLowerAccented},
    {0x142, 0x142, kLowerAccented},
    {0x153, 0x153, kLowerAccented},
    {0x155, 0x155, kLowerAccented},
    {0x15B, 0x15B, kLowerAccented},
    {0x15F, 0x15F, kLowerAccented},
    {0x161, 0x161, kLowerAccented},
    {0x165, 0x165, kLowerAccented},
    {0x17A, 0x17A, kLowerAccented},
    {0x17C, 0x17C, kLowerAccented},
    {0x17E, 0x17E, kLowerAccented},
    {0x491, 0x491, kLowerAccented},
    {0xFB01, 0xFB02, kLowerAccented},
    // upper-case letters of other scripts (and Latin thorn)
    {0xDE, 0xDE, kUpperCommon},
    {0x386, 0x386, kUpperCommon},
    {0x388, 0x38A, kUpperCommon},
    {0x38C, 0x38C, kUpperCommon},
    {0x38E, 0x38F, kUpperCommon},
    {0x391, 0x3AB, kUpperCommon},
    {0x401, 0x42F, kUpperCommon},
    // lower-case letters of other scripts
    {0x3AC, 0x3C9, kLowerCommon},
    {0x430, 0x45F, kLowerCommon},
    // box drawing
    {0x2502, 0x2502, kBox},
    {0x250C, 0x250C, kBox},
    {0x2510, 0x2510, kBox},
    {0x2518, 0x2518, kBox},
    {0x251C, 0x251C, kBox},
    {0x2524, 0x2524, kBox},
    {0x252C, 0x252C, kBox},
    {0x253C, 0x253C, kBox},
    {0x2550, 0x256C, kBox},
    {0x2580, 0x2580, kBox},
    {0x2584, 0x2584, kBox},
    {0x2588, 0x2588, kBox},
    {0x258C, 0x258C, kBox},
    {0x2590, 0x2593, kBox},
    // characters that code pages show for a UTF-8 lead byte of a 2-byte sequence
    {0xC2, 0xDF, kFirstOf2},
    {0x100, 0x100, kFirstOf2},
    {0x102, 0x102, kFirstOf2},
    {0x106, 0x106, kFirstOf2},
    {0x10C, 0x10C, kFirstOf2},
    {0x10E, 0x10E, kFirstOf2},
    {0x110, 0x110, kFirstOf2},
    {0x112, 0x112, kFirstOf2},
    {0x116, 0x116, kFirstOf2},
    {0x118, 0x118, kFirstOf2},
    {0x11A, 0x11A, kFirstOf2},
    {0x11E, 0x11E, kFirstOf2},
    {0x122, 0x122, kFirstOf2},
    {0x12A, 0x12A, kFirstOf2},
    {0x130, 0x130, kFirstOf2},
    {0x136, 0x136, kFirstOf2},
    {0x139, 0x139, kFirstOf2},
    {0x13B, 0x13B, kFirstOf2},
    {0x141, 0x141, kFirstOf2},
    {0x143, 0x143, kFirstOf2},
    {0x145, 0x145, kFirstOf2},
    {0x147, 0x147, kFirstOf2},
    {0x14C, 0x14C, kFirstOf2},
    {0x150, 0x150, kFirstOf2},
    {0x158, 0x158, kFirstOf2},
    {0x15A, 0x15A, kFirstOf2},
    {0x15E, 0x15E, kFirstOf2},
    {0x160, 0x160, kFirstOf2},
    {0x162, 0x162, kFirstOf2},
    {0x16A, 0x16A, kFirstOf2},
    {0x16E, 0x16E, kFirstOf2},
    {0x170, 0x170, kFirstOf2},
    {0x172, 0x172, kFirstOf2},
    {0x179, 0x179, kFirstOf2},
    {0x17B, 0x17B, kFirstOf2},
    {0x17D, 0x17D, kFirstOf2},
    {0x392, 0x3A1, kFirstOf2},
    {0x3A3, 0x3AF, kFirstOf2},
    {0x412, 0x42F, kFirstOf2},
    // ... of a 3-byte sequence
    {0xE0, 0xEF, kFirstOf3},
    {0x101, 0x101, kFirstOf3},
    {0x103, 0x103, kFirstOf3},
    {0x105, 0x105, kFirstOf3},
    {0x107, 0x107, kFirstOf3},
    {0x10D, 0x10D, kFirstOf3},
    {0x10F, 0x10F, kFirstOf3},
    {0x113, 0x113, kFirstOf3},
    {0x117, 0x117, kFirstOf3},
    {0x119, 0x119, kFirstOf3},
    {0x11B, 0x11B, kFirstOf3},
    {0x123, 0x123, kFirstOf3},
    {0x12B, 0x12B, kFirstOf3},
    {0x12F, 0x12F, kFirstOf3},
    {0x137, 0x137, kFirstOf3},
    {0x13A, 0x13A, kFirstOf3},
    {0x13C, 0x13C, kFirstOf3},
    {0x155, 0x155, kFirstOf3},
    {0x17A, 0x17A, kFirstOf3},
    {0x3B0, 0x3BF, kFirstOf3},
    {0x430, 0x43F, kFirstOf3},
    // ... of a 4-byte sequence (lead bytes F0 and F3)
    {0xF0, 0xF0, kFirstOf4},
    {0xF3, 0xF3, kFirstOf4},
    {0x111, 0x111, kFirstOf4},
    {0x11F, 0x11F, kFirstOf4},
    {0x161, 0x161, kFirstOf4},
    {0x3C0, 0x3C0, kFirstOf4},
    {0x3C3, 0x3C3, kFirstOf4},
    {0x440, 0x440, kFirstOf4},
    {0x443, 0x443, kFirstOf4},
    // continuation bytes 80..BF as the code pages show them: both sets...
    {0x80, 0xBF, kContinuation | kContStrict},
    {0xC6, 0xC6, kContinuation | kContStrict},
    {0xD8, 0xD8, kContinuation | kContStrict},
    {0xE6, 0xE6, kContinuation | kContStrict},
    {0xF8, 0xF8, kContinuation | kContStrict},
    {0x104, 0x105, kContinuation | kContStrict},
    {0x13D, 0x13E, kContinuation | kContStrict},
    {0x141, 0x142, kContinuation | kContStrict},
    {0x152, 0x153, kContinuation | kContStrict},
    {0x156, 0x157, kContinuation | kContStrict},
    {0x15A, 0x15B, kContinuation | kContStrict},
    {0x15E, 0x161, kContinuation | kContStrict},
    {0x164, 0x165, kContinuation | kContStrict},
    {0x178, 0x17E, kContinuation | kContStrict},
    {0x192, 0x192, kContinuation | kContStrict},
    {0x2C6, 0x2C7, kContinuation | kContStrict},
    {0x2D8, 0x2D8, kContinuation | kContStrict},
    {0x2DB, 0x2DD, kContinuation | kContStrict},
    {0x384, 0x386, kContinuation | kContStrict},
    {0x388, 0x38A, kContinuation | kContStrict},
    {0x38C, 0x38C, kContinuation | kContStrict},
    {0x38E, 0x38F, kContinuation | kContStrict},
    {0x401, 0x40C, kContinuation | kContStrict},
    {0x40E, 0x40F, kContinuation | kContStrict},
    {0x451, 0x45C, kContinuation | kContStrict},
    {0x45E, 0x45F, kContinuation | kContStrict},
    {0x490, 0x491, kContinuation | kContStrict},
    {0x2020, 0x2021, kContinuation | kContStrict},
    {0x2030, 0x2030, kContinuation | kContStrict},
    {0x2039, 0x203A, kContinuation | kContStrict},
    {0x20AC, 0x20AC, kContinuation | kContStrict},
    {0x2116, 0x2116, kContinuation | kContStrict},
    {0x2122, 0x2122, kContinuation | kContStrict},
    // ... and only the loose set: space (for A0), dashes, quotes, bullet, ellipsis
    {0x20, 0x20, kContinuation},
    {0x2013, 0x2015, kContinuation},
    {0x2018, 0x201A, kContinuation},
    {0x201C, 0x201E, kContinuation},
    {0x2022, 0x2022, kContinuation},
    {0x2026, 0x2026, kContinuation},
};

// Dense look-up tables for the two blocks where nearly all classified characters live.
constexpr char32_t kLowBlockStart = 0x20, kLowBlockEnd = 0x500;
constexpr char32_t kPunctBlockStart = 0x2000, kPunctBlockEnd = 0x2600;

template <char32_t Start, char32_t End>
constexpr std::array<uint32_t, End - Start> build_class_block() {
  std::array<uint32_t, End - Start> table{};
  for (const ClassRange& r : kClassRanges)
    for (char32_t c = r.lo; c <= r.hi; ++c)
      if (c >= Start && c < End) table[c - Start] |= r.bits;
  return table;
}

constexpr auto kLowBlock = build_class_block<kLowBlockStart, kLowBlockEnd>();
constexpr auto kPunctBlock = build_class_block<kPunctBlockStart, kPunctBlockEnd>();

inline uint32_t char_class(char32_t c) {
  if (c >= kLowBlockStart && c < kLowBlockEnd) return kLowBlock[c - kLowBlockStart];
  if (c >= kPunctBlockStart && c < kPunctBlockEnd) return kPunctBlock[c - kPunctBlockStart];
  if (c == 0xF8FF) return kStartPunct;
  if (c == 0xFB01 || c == 0xFB02) return kLowerAccented;
  if (c == 0xFFFD) return kBad;
  return 0;
}

// Python's str.isspace() / regex \s: general category Zs, or bidi class WS, B or S.
bool py_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  if (c > 0x10FFFF) return false;
  const UChar32 u = static_cast<UChar32>(c);
  if (u_charType(u) == U_SPACE_SEPARATOR) return true;
  const UCharDirection d = u_charDirection(u);
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}

// Python's regex \w: str.isalnum() (a letter, or any numeric character) or '_'.
bool py_word(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (c > 0x10FFFF) return false;
  const UChar32 u = static_cast<UChar32>(c);
  return u_isalpha(u) || u_getIntPropertyValue(u, UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}

inline bool ascii_lower(char32_t c) { return c >= 'a' && c <= 'z'; }
inline bool ascii_alpha(char32_t c) { return ascii_lower(c) || (c >= 'A' && c <= 'Z'); }

bool one_of(char32_t c, std::u32string_view set) { return set.find(c) != std::u32string_view::npos; }

// Does one of BADNESS_RE's alternatives match at position i of t?
bool badness_at(std::u32string_view t, size_t i) {
  const size_t n = t.size();
  const size_t avail = n - i;
  const char32_t c0 = t[i];
  const char32_t c1 = avail > 1 ? t[i + 1] : 0;
  const char32_t c2 = avail > 2 ? t[i + 2] : 0;
  const char32_t c3 = avail > 3 ? t[i + 3] : 0;
  const uint32_t m0 = char_class(c0);
  const uint32_t m1 = avail > 1 ? char_class(c1) : 0;
  const uint32_t m2 = avail > 2 ? char_class(c2) : 0;

  constexpr uint32_t kMost =
      kBad | kLowerAccented | kUpperAccented | kBox | kStartPunct | kEndPunct | kCurrency | kNumeric | kLaw;
  if (m0 & kC1) return true;
  if (avail >= 2) {
    if ((m0 & kMost) && (m1 & kBad)) return true;
    if ((m0 & kBad) && (m1 & kMost)) return true;
    if ((m0 & (kLowerAccented | kLowerCommon | kBox | kEndPunct | kCurrency | kNumeric)) && (m1 & kUpperAccented))
      return true;
    if ((m0 & (kBox | kEndPunct | kCurrency | kNumeric)) && (m1 & kLowerAccented)) return true;
    if ((m0 & (kLowerAccented | kBox | kEndPunct)) && (m1 & kCurrency)) return true;
    if ((m0 & (kUpperAccented | kBox)) && (m1 & (kNumeric | kLaw))) return true;
    if ((m0 & (kCurrency | kNumeric | kBox)) && (m1 & kStartPunct)) return true;
    if ((m0 & kBox) && (m1 & kKaomoji)) return true;
    if ((m0 & (kLowerAccented | kUpperAccented | kCurrency | kNumeric | kStartPunct | kEndPunct | kLaw)) && (m1 & kBox))
      return true;
    if ((m0 & kBox) && (m1 & kEndPunct)) return true;
    // the ligature oe not followed by an unaccented Latin letter
    if ((c0 == 0x152 || c0 == 0x153) && !ascii_alpha(c1)) return true;
    // a degree sign after a capital letter
    if ((m0 & kUpperAccented) && c1 == 0xB0) return true;
    // common Windows-1252 two-character mojibake: one of "ÂÃÎÐ" and one of these
    if ((c0 == 0xC2 || c0 == 0xC3 || c0 == 0xCE || c0 == 0xD0) &&
        ((m1 & (kStartPunct | kEndPunct)) ||
         one_of(c1,
                U"\u20AC\u0153\u0160\u0161\u00A2\u00A3\u0178\u017E\u00A0\u00AD\u00AE\u00A9\u00B0\u00B7\u00BB"
                U"\u2013\u2014\u00B4")))
      return true;
    if (c0 == 0xD7 && (c1 == 0xB2 || c1 == 0xB3)) return true;
    // Windows-1252 mojibake of 3-byte South Asian letters
    if (c0 == 0xE0 && one_of(c1, U"\u00B2\u00B5\u00B9\u00BC\u00BD\u00BE")) return true;
    // MacRoman mojibake
    if (c0 == 0x221A && one_of(c1, U"\u00B1\u2202\u2020\u2260\u00AE\u2122\u00B4\u2264\u2265\u00A5\u00B5\u00F8"))
      return true;
    if (c0 == 0x2248 && (c1 == 0xB0 || c1 == 0xA2)) return true;
    // Windows-1251 mojibake of U+2000..U+206F
    if (c0 == 0x432 && c1 == 0x402) return true;
    // Windows-1252 mojibake of "à", "á" and A0 itself
    if (c0 == 0xC3 && (c1 == 0xA0 || c1 == 0xA1)) return true;
    if (i == 0 && (c0 == 0xC3 || c0 == 0xC2) && c1 == U' ') return true;
    // Windows-1257 mojibake of U+2000..U+206F
    if (c0 == 0x101 && c1 == 0x20AC) return true;
  }
  if (avail >= 3) {
    if (ascii_alpha(c0) && (m1 & (kLowerCommon | kUpperCommon)) && (m2 & kBad)) return true;
    if (py_space(c0) && (m1 & kUpperAccented) && (m2 & kCurrency)) return true;
    if ((m0 & (kLowerAccented | kUpperAccented | kBox | kCurrency | kEndPunct)) && (m1 & kStartPunct) &&
        (m2 & kNumeric))
      return true;
    if ((m0 & (kLowerAccented | kUpperAccented | kCurrency | kNumeric | kBox | kLaw)) && (m1 & kEndPunct) &&
        (m2 & kStartPunct))
      return true;
    if (ascii_lower(c0) && (m1 & kUpperAccented) && (m2 & (kStartPunct | kCurrency))) return true;
    if ((m0 & (kLowerAccented | kUpperAccented)) && (m1 & (kStartPunct | kEndPunct)) && py_word(c2)) return true;
    // MacRoman mojibake
    if (c0 == 0x201A && c1 == 0xC4 &&
        one_of(c2, U"\u00EC\u00EE\u00EF\u00F2\u00F4\u00FA\u00F9\u00FB\u2020\u00B0\u00A2\u03C0"))
      return true;
    if (c0 == 0x201A && (c1 == 0xE2 || c1 == 0xF3) && one_of(c2, U"\u00E0\u00E4\u00B0\u00EA")) return true;
    // Windows-1251 mojibake of Latin-1 or Cyrillic: three characters
    {
      auto vgrs = [](char32_t c) { return c == 0x412 || c == 0x413 || c == 0x420 || c == 0x421; };
      if (vgrs(c0) && vgrs(c2) &&
          ((m1 & (kC1 | kBad | kStartPunct | kEndPunct | kCurrency)) || c1 == 0xB0 || c1 == 0xB5))
        return true;
    }
    // "à" or "Â" then a space, after a lower-case letter and an optional space
    if (ascii_lower(c0) && (c1 == 0xC3 || c1 == 0xC2) && c2 == U' ') return true;
    if (avail >= 4 && ascii_lower(c0) && py_space(c1) && (c2 == 0xC3 || c2 == 0xC2) && c3 == U' ') return true;
    // "Â" standing for itself before a space or punctuation
    if ((ascii_lower(c0) || c0 == U'.' || c0 == U',' || c0 == U'?' || c0 == U'!' || (m0 & kEndPunct)) && c1 == 0xC2 &&
        (c2 == U' ' || (m2 & (kStartPunct | kEndPunct))))
      return true;
    // Windows-1253 mojibake of U+2000..U+206F
    if (c0 == 0x3B2 && c1 == 0x20AC && one_of(c2, U"\u2122\u00A0\u0386\u00AD\u00AE\u00B0")) return true;
    // Windows-1253 mojibake of Latin-1 or Greek
    {
      auto bgxo = [](char32_t c) { return c == 0x392 || c == 0x393 || c == 0x39E || c == 0x39F; };
      if (bgxo(c0) && bgxo(c2) && ((m1 & (kC1 | kBad | kStartPunct | kEndPunct | kCurrency)) || c1 == 0xB0))
        return true;
    }
  }
  if (avail >= 4) {
    // Windows-1252 mojibake of Arabic: four characters
    auto arabic_second = [](char32_t c) {
      return (char_class(c) & (kCommon | kCurrency | kBad | kNumeric | kStartPunct)) ||
             one_of(c, U"\u0178\u0160\u00AE\u00B0\u00B5\u00BB");
    };
    if ((c0 == 0xD8 || c0 == 0xD9) && arabic_second(c1) && (c2 == 0xD8 || c2 == 0xD9) && arabic_second(c3)) return true;
  }
  if (avail >= 7) {
    // Windows-1251 on top of Latin-1 mojibake of Windows-1252 punctuation, near a Latin letter
    if (c0 == 0x413 && c1 == 0x45E && c2 == 0x412 && c3 == 0x402 && t[i + 4] == 0x412 && t[i + 5] != U'\n' &&
        (ascii_alpha(t[i + 6]) || t[i + 6] == U' '))
      return true;
  }
  return false;
}

bool is_ascii_text(std::u32string_view t) {
  for (char32_t c : t)
    if (c >= 0x80) return false;
  return true;
}

// A character of one of ftfy's classes above (all of them non-ASCII).
inline bool is_classified(char32_t c) { return c >= 0x80 && char_class(c) != 0; }

// ftfy.badness.is_bad: does the text look like it holds mojibake? With skip_unclassified, only
// positions with a classified character among the next three are tried: every alternative of
// badness_at needs one there, so the answer is the same (tests check it), and text with none
// (CJK, emoji, most Latin) costs one table look-up a character.
bool is_bad(std::u32string_view t, bool skip_unclassified = true) {
  const size_t n = t.size();
  size_t next = 0;  // the first classified position at or after i (n: none)
  for (size_t i = 0; i < n; ++i) {
    if (skip_unclassified) {
      if (next < i) next = i;
      while (next < n && !is_classified(t[next])) ++next;
      if (next == n) return false;
      if (next > i + 2) {
        i = next - 3;  // the loop's ++i lands two before it
        continue;
      }
    }
    if (t[i] < 0x80 && !ascii_alpha(t[i]) && !py_space(t[i]) && t[i] != U'.' && t[i] != U',' && t[i] != U'?' &&
        t[i] != U'!')
      continue;  // no alternative starts with such a character
    if (badness_at(t, i)) return true;
  }
  return false;
}

// UTF8_DETECTOR_RE: one or more UTF-8-looking sequences, not right after a strict continuation
// character. Returns the length of the match at i (0: none).
size_t utf8_detector_at(std::u32string_view t, size_t i) {
  if (i > 0 && (char_class(t[i - 1]) & kContStrict)) return 0;
  const size_t n = t.size();
  size_t pos = i;
  for (;;) {
    const uint32_t lead = char_class(t[pos]);
    auto conts = [&](size_t count) {
      if (pos + count >= n) return false;
      for (size_t k = 1; k <= count; ++k)
        if (!(char_class(t[pos + k]) & kContinuation)) return false;
      return true;
    };
    if ((lead & kFirstOf2) && conts(1)) {
      pos += 2;
    } else if ((lead & kFirstOf3) && conts(2)) {
      pos += 3;
    } else if ((lead & kFirstOf4) && conts(3)) {
      pos += 4;
    } else {
      break;
    }
    if (pos >= n) break;
  }
  return pos - i;
}

bool has_utf8_detector_match(std::u32string_view t) {
  for (size_t i = 0; i < t.size(); ++i)
    if (utf8_detector_at(t, i) != 0) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// fix_encoding

std::u32string fix_encoding(std::u32string text, int depth);

// fix_c1_controls: C1 controls read as Windows-1252 (sloppily: the five undefined ones stay).
std::u32string fix_c1_controls(std::u32string_view text) {
  std::u32string out(text);
  const Charmap& w1252 = kCharmaps[1];
  for (char32_t& c : out)
    if (c >= 0x80 && c <= 0x9F) c = w1252.high[c - 0x80];
  return out;
}

bool has_c1(std::u32string_view t) {
  for (char32_t c : t)
    if (c >= 0x80 && c <= 0x9F) return true;
  return false;
}

std::u32string decode_inconsistent_utf8(std::u32string_view text, int depth) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8_detector_at(text, i);
    if (len == 0) {
      out.push_back(text[i]);
      ++i;
      continue;
    }
    const std::u32string_view piece = text.substr(i, len);
    if (len < text.size() && is_bad(piece)) out += fix_encoding(std::u32string(piece), depth + 1);
    else out.append(piece);
    i += len;
  }
  return out;
}

// One step of fix_encoding_and_explain; returns the text unchanged when it has nothing to do.
std::u32string fix_encoding_step(const std::u32string& text, int depth) {
  if (text.empty() || is_ascii_text(text) || !is_bad(text)) return text;

  bool latin1_possible = false;
  std::string bytes;
  std::u32string decoded;
  for (const Charmap& cm : kCharmaps) {
    if (!charmap_encode(text, cm, bytes)) continue;
    if (&cm == &kCharmaps[0]) latin1_possible = true;
    if (cm.restore_a0 && has_altered_utf8(bytes)) bytes = restore_byte_a0(bytes);
    if (cm.sloppy) bytes = replace_lossy_sequences(bytes);
    const bool variants = bytes.find('\xED') != std::string::npos || bytes.find('\xC0') != std::string::npos;
    if (decode_utf8_strict(bytes, variants, decoded)) return decoded;
  }

  if (has_utf8_detector_match(text)) {
    std::u32string fixed = decode_inconsistent_utf8(text, depth);
    if (fixed != text) return fixed;
  }

  // Latin-1 text that was meant as Windows-1252. (ftfy compares against the name "windows-1252",
  // which its list of code pages never holds, so this applies whenever Latin-1 is possible.)
  if (latin1_possible) {
    bool decodable = true;
    std::u32string fixed(text);
    for (char32_t& c : fixed) {
      if (c >= 0x80 && c <= 0x9F) {
        if (!kWindows1252Defined[c - 0x80]) {
          decodable = false;
          break;
        }
        c = kCharmaps[1].high[c - 0x80];
      }
    }
    if (decodable && fixed != text) return fixed;
  }

  if (has_c1(text)) return fix_c1_controls(text);
  return text;
}

std::u32string fix_encoding(std::u32string text, int depth) {
  if (depth > kMaxRecursion) return text;
  for (int iter = 0; iter < kMaxIterations; ++iter) {
    std::u32string next = fix_encoding_step(text, depth);
    if (next == text) break;
    text = std::move(next);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// The other fixers

// ftfy's unescape_html: entities matching &#?[0-9A-Za-z]{1,24}; that are in ftfy's table, and
// numeric references that html.unescape decodes completely.
std::u32string unescape_html_ftfy(std::u32string_view text) {
  if (text.find(U'&') == std::u32string_view::npos) return std::u32string(text);
  std::u32string out;
  out.reserve(text.size());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    if (text[i] != U'&') {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i + 1;
    const bool numeric = j < n && text[j] == U'#';
    if (numeric) ++j;
    const size_t name_start = j;
    while (j < n && j - name_start < 25 && (ascii_alpha(text[j]) || (text[j] >= '0' && text[j] <= '9'))) ++j;
    const size_t len = j - name_start;
    if (len < 1 || len > 24 || j >= n || text[j] != U';') {
      out.push_back(text[i++]);
      continue;
    }
    const std::u32string_view match = text.substr(i, j + 1 - i);  // "&...;"
    if (detail::ftfy_entity_lookup(match.substr(1), out)) {
      // a name in ftfy's table ("#..." never is one)
    } else if (numeric) {
      const std::u32string decoded = html_unescape(match);
      if (decoded.find(U';') != std::u32string::npos) out.append(match);  // only partly decoded: keep it as it was
      else out += decoded;
    } else {
      out.append(match);
    }
    i = j + 1;
  }
  return out;
}

// ESC '[' (digits or ';')* letter: "ANSI" terminal escapes.
std::u32string remove_terminal_escapes(std::u32string_view text) {
  if (text.find(U'\x1b') == std::u32string_view::npos) return std::u32string(text);
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == U'\x1b' && i + 1 < text.size() && text[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < text.size() && (text[j] == U';' || (text[j] <= 0x10FFFF && u_charType(static_cast<UChar32>(text[j])) ==
                                                                                U_DECIMAL_DIGIT_NUMBER)))
        ++j;
      if (j < text.size() && ascii_alpha(text[j])) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

std::u32string fix_latin_ligatures(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    switch (c) {
      case 0x132: out += U"IJ"; break;
      case 0x133: out += U"ij"; break;
      case 0x149: out += U"\u02BCn"; break;
      case 0x1C4: out += U"D\u017D"; break;
      case 0x1C5: out += U"D\u017E"; break;
      case 0x1C6: out += U"d\u017E"; break;
      case 0x1C7: out += U"LJ"; break;
      case 0x1C8: out += U"Lj"; break;
      case 0x1C9: out += U"lj"; break;
      case 0x1CA: out += U"NJ"; break;
      case 0x1CB: out += U"Nj"; break;
      case 0x1CC: out += U"nj"; break;
      case 0x1F1: out += U"DZ"; break;
      case 0x1F2: out += U"Dz"; break;
      case 0x1F3: out += U"dz"; break;
      case 0xFB00: out += U"ff"; break;
      case 0xFB01: out += U"fi"; break;
      case 0xFB02: out += U"fl"; break;
      case 0xFB03: out += U"ffi"; break;
      case 0xFB04: out += U"ffl"; break;
      case 0xFB05: out += U"\u017Ft"; break;
      case 0xFB06: out += U"st"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

icu::UnicodeString to_icu(std::u32string_view text) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                       static_cast<int32_t>(text.size()));
}

std::u32string from_icu(const icu::UnicodeString& s) {
  std::u32string out(static_cast<size_t>(s.countChar32()), U'\0');
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = s.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  out.resize(U_SUCCESS(status) ? static_cast<size_t>(n) : 0);
  return out;
}

// U+3000 becomes a space; U+FF01..U+FFEF become their NFKC form (full-width ASCII, half-width
// katakana and hangul and symbols).
std::u32string fix_character_width(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(status);
  for (char32_t c : text) {
    if (c == 0x3000) {
      out.push_back(U' ');
    } else if (c >= 0xFF01 && c <= 0xFFEF && nfkc != nullptr && U_SUCCESS(status)) {
      UErrorCode st = U_ZERO_ERROR;
      const icu::UnicodeString norm = nfkc->normalize(icu::UnicodeString(static_cast<UChar32>(c)), st);
      if (U_SUCCESS(st)) out += from_icu(norm);
      else out.push_back(c);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string uncurl_quotes(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out) {
    if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    else if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return out;
}

// CRLF, CR, U+2028, U+2029 and U+0085 all become LF.
std::u32string fix_line_breaks(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r') {
      out.push_back(U'\n');
      if (i + 1 < text.size() && text[i + 1] == U'\n') ++i;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Paired UTF-16 surrogates become the character they encode, lone ones U+FFFD. (Values above
// U+10FFFF, which Python strings cannot hold, also become U+FFFD here.)
std::u32string fix_surrogates(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < text.size() && text[i + 1] >= 0xDC00 && text[i + 1] <= 0xDFFF) {
      out.push_back(0x10000 + ((c - 0xD800) << 10) + (text[i + 1] - 0xDC00));
      ++i;
    } else if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
      out.push_back(0xFFFD);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string remove_control_chars(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text)
    if (!is_removed_control(c)) out.push_back(c);
  return out;
}

std::u32string nfc(std::u32string_view text) {
  if (is_ascii_text(text)) return std::u32string(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || norm == nullptr) return std::u32string(text);
  const icu::UnicodeString src = to_icu(text);
  if (norm->isNormalized(src, status) && U_SUCCESS(status)) return std::u32string(text);
  status = U_ZERO_ERROR;
  const icu::UnicodeString result = norm->normalize(src, status);
  if (U_FAILURE(status)) return std::u32string(text);
  return from_icu(result);
}

// ICU's NFC quick check (UAX #15) in one call, on the text as UTF-16 (short texts stay in the
// UnicodeString's own buffer): yes only when NFC surely leaves the text as it is.
bool nfc_quick_check_yes(std::u32string_view t) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || norm == nullptr) return false;
  const UNormalizationCheckResult result = norm->quickCheck(to_icu(t), status);
  return U_SUCCESS(status) && result == UNORM_YES;
}

// Which of the character-level fixers have something to act on (bits of FixerWork).
enum FixerWork : unsigned {
  kWorkC1 = 1,
  kWorkLigatures = 2,
  kWorkWidth = 4,
  kWorkQuotes = 8,
  kWorkLineBreaks = 16,
  kWorkSurrogates = 32,
  kWorkEscapes = 64,
  kWorkControls = 128,
};

// The fixers that change or remove `c` (0: none does).
unsigned fixer_work(char32_t c) {
  if (c >= 0x20 && c < 0x7F) return 0;
  unsigned work = 0;
  if (c >= 0x80 && c <= 0x9F) work |= kWorkC1;
  if (c == 0x132 || c == 0x133 || c == 0x149 || (c >= 0x1C4 && c <= 0x1CC) || (c >= 0x1F1 && c <= 0x1F3) ||
      (c >= 0xFB00 && c <= 0xFB06))
    work |= kWorkLigatures;
  if (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)) work |= kWorkWidth;
  if (c == 0x2BC || (c >= 0x2018 && c <= 0x201F)) work |= kWorkQuotes;
  if (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85) work |= kWorkLineBreaks;
  if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) work |= kWorkSurrogates;
  if (c == 0x1B) work |= kWorkEscapes;
  if (is_removed_control(c)) work |= kWorkControls;
  return work;
}

unsigned fixer_work(std::u32string_view text) {
  unsigned work = 0;
  for (char32_t c : text) work |= fixer_work(c);
  return work;
}

// fix_segment(segment) == segment: each fixer alone leaves it unchanged, so their sequence does.
// ('&' may start an HTML entity, whatever the unescape setting.)
bool segment_is_fixed(std::u32string_view segment) {
  bool ascii = true;
  for (char32_t c : segment) {
    if (c == U'&' || fixer_work(c) != 0) return false;
    ascii &= c < 0x80;
  }
  return ascii || (!is_bad(segment) && nfc_quick_check_yes(segment));
}

// fix_and_explain (without the explanation) on one segment. With `quick`, the loop stops
// before an iteration the quick check shows would change nothing (it would stop after it),
// and a character-level fixer runs only when its characters occur (else it is the identity).
std::u32string fix_segment(std::u32string text, bool unescape, bool quick) {
  for (int iter = 0; iter < kMaxIterations; ++iter) {
    if (quick && segment_is_fixed(text)) break;
    const std::u32string orig = text;
    if (unescape) text = unescape_html_ftfy(text);
    text = fix_encoding(std::move(text), 0);
    unsigned work = quick ? fixer_work(text) : ~0u;
    auto run = [&](unsigned bit, std::u32string (*fixer)(std::u32string_view)) {
      if (!(work & bit)) return;
      text = fixer(text);
      if (quick) work = fixer_work(text);  // its output may hold another's characters (ŉ -> ʼn)
    };
    run(kWorkC1, fix_c1_controls);
    run(kWorkLigatures, fix_latin_ligatures);
    run(kWorkWidth, fix_character_width);
    run(kWorkQuotes, uncurl_quotes);
    run(kWorkLineBreaks, fix_line_breaks);
    run(kWorkSurrogates, fix_surrogates);
    run(kWorkEscapes, remove_terminal_escapes);
    run(kWorkControls, remove_control_chars);
    text = nfc(text);
    if (text == orig) break;
  }
  return text;
}

// The segments ftfy_fix_text cuts the text into.
template <class Fn>
void for_each_segment(std::u32string_view text, Fn&& fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find(U'\n', pos);
    size_t end = nl == std::u32string_view::npos ? text.size() : nl + 1;
    if (end - pos > kMaxSegment) end = pos + kMaxSegment;
    if (!fn(text.substr(pos, end - pos))) return;
    pos = end;
  }
}

std::u32string fix_text(std::u32string_view text, bool quick) {
  std::u32string out;
  out.reserve(text.size());
  bool unescape = true;  // "auto": on until a segment holds '<'
  for_each_segment(text, [&](std::u32string_view segment) {
    if (unescape && segment.find(U'<') != std::u32string_view::npos) unescape = false;
    out += fix_segment(std::u32string(segment), unescape, quick);
    return true;
  });
  return out;
}

}  // namespace

namespace detail {
bool ftfy_is_bad(std::u32string_view text, bool skip_unclassified) { return is_bad(text, skip_unclassified); }
std::u32string ftfy_fix_text_every_pass(std::u32string_view text) { return fix_text(text, false); }
}  // namespace detail

bool ftfy_leaves_unchanged(std::u32string_view text) {
  bool unchanged = true;
  for_each_segment(text, [&](std::u32string_view segment) { return unchanged = segment_is_fixed(segment); });
  return unchanged;
}

std::u32string ftfy_fix_text(std::u32string_view text) { return fix_text(text, true); }

}  // namespace clip::text
