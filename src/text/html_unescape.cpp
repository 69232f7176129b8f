// Python 3.11's html.unescape, on code points, plus the entity look-ups ftfy's unescape_html needs.
//
// html.unescape finds every match of
//     &( #[0-9]+;?  |  #[xX][0-9a-fA-F]+;?  |  [^\t\n\f <&#;]{1,32};? )
// scanning left to right, and replaces it:
//   * numeric references: the HTML5 replacement table for 0x00, 0x0D and 0x80..0x9F; U+FFFD for
//     surrogates and values above U+10FFFF; nothing for the HTML5 "invalid code points" (most C0
//     and C1 controls, noncharacters); otherwise the code point itself;
//   * names: the HTML5 entity of that exact name (with or without its ';'), else the longest
//     legacy name (at least 2 characters) that is a prefix of it, followed by the rest as text;
//     else the match is left as it was.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "text/ftfy.h"

namespace clip::text {
namespace detail {

struct EntityRow {
  const char* name;  // without the leading '&'
  char32_t value[3];
  int length;
};

#include "text/html_entities.inc"

namespace {

template <size_t N>
const EntityRow* find_row(const EntityRow (&table)[N], std::string_view name) {
  const EntityRow* end = table + N;
  const EntityRow* it = std::lower_bound(
      table, end, name, [](const EntityRow& row, std::string_view key) { return std::string_view(row.name) < key; });
  return it != end && std::string_view(it->name) == name ? it : nullptr;
}

// The name as ASCII bytes; false when it holds anything else (no entity name does).
bool to_ascii(std::u32string_view name, std::string& out) {
  out.clear();
  for (char32_t c : name) {
    if (c >= 0x80) return false;
    out.push_back(static_cast<char>(c));
  }
  return true;
}

void append_row(std::u32string& out, const EntityRow& row) { out.append(row.value, static_cast<size_t>(row.length)); }

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_value(char32_t c) {
  if (is_ascii_digit(c)) return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  return static_cast<int>(c - 'A' + 10);
}

// HTML5's table for references to 0x00, 0x0D and the C1 range (which mean Windows-1252).
char32_t invalid_charref(uint32_t num, bool& found) {
  static constexpr char32_t kC1[32] = {
      0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 0x80..0x87
      0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,  // 0x88..0x8F
      0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 0x90..0x97
      0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,  // 0x98..0x9F
  };
  found = true;
  if (num == 0x00) return 0xFFFD;
  if (num == 0x0D) return U'\r';
  if (num >= 0x80 && num <= 0x9F) return kC1[num - 0x80];
  found = false;
  return 0;
}

// Code points a numeric reference may not produce; it then produces nothing.
bool is_invalid_codepoint(uint32_t num) {
  if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F)) return true;
  if (num >= 0x7F && num <= 0x9F) return true;
  if (num >= 0xFDD0 && num <= 0xFDEF) return true;
  return (num & 0xFFFE) == 0xFFFE;  // U+xFFFE and U+xFFFF in every plane (num <= 0x10FFFF here)
}

// The replacement for a numeric reference whose value is `num` (`overflow`: above 0x10FFFF).
void append_numeric(std::u32string& out, uint32_t num, bool overflow) {
  if (!overflow) {
    bool found = false;
    const char32_t mapped = invalid_charref(num, found);
    if (found) {
      out.push_back(mapped);
      return;
    }
  }
  if (overflow || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF)) {
    out.push_back(0xFFFD);
    return;
  }
  if (is_invalid_codepoint(num)) return;
  out.push_back(static_cast<char32_t>(num));
}

// Accumulates a digit, saturating: any value above 0x10FFFF is simply "too big".
void accumulate(uint32_t& num, bool& overflow, uint32_t base, uint32_t digit) {
  if (overflow) return;
  num = num * base + digit;
  if (num > 0x10FFFF) overflow = true;
}

bool is_name_stop(char32_t c) {
  return c == U'\t' || c == U'\n' || c == U'\f' || c == U' ' || c == U'<' || c == U'&' || c == U'#' || c == U';';
}

}  // namespace

// ftfy's entity table: "&name;" (name given without '&', with its ';') as HTML5 has it, or one of
// the all-caps forms ftfy adds. Appends the characters and returns true when known.
bool ftfy_entity_lookup(std::u32string_view name, std::u32string& out) {
  std::string key;
  if (!to_ascii(name, key)) return false;
  const EntityRow* row = find_row(kHtml5Entities, key);
  if (row == nullptr) row = find_row(kFtfyUpperEntities, key);
  if (row == nullptr) return false;
  append_row(out, *row);
  return true;
}

}  // namespace detail

std::u32string html_unescape(std::u32string_view text) {
  using namespace detail;
  if (text.find(U'&') == std::u32string_view::npos) return std::u32string(text);

  std::u32string out;
  out.reserve(text.size());
  std::string key;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = text[i];
    if (c != U'&') {
      out.push_back(c);
      ++i;
      continue;
    }
    const size_t start = i + 1;  // after '&'
    if (start < n && text[start] == U'#') {
      size_t j = start + 1;
      uint32_t num = 0;
      bool overflow = false;
      if (j < n && is_ascii_digit(text[j])) {
        while (j < n && is_ascii_digit(text[j])) accumulate(num, overflow, 10, static_cast<uint32_t>(text[j++] - '0'));
      } else if (j + 1 < n && (text[j] == U'x' || text[j] == U'X') && is_ascii_hex(text[j + 1])) {
        ++j;
        while (j < n && is_ascii_hex(text[j]))
          accumulate(num, overflow, 16, static_cast<uint32_t>(hex_value(text[j++])));
      } else {
        out.push_back(c);  // "&#" with nothing a reference could be made of
        ++i;
        continue;
      }
      if (j < n && text[j] == U';') ++j;
      append_numeric(out, num, overflow);
      i = j;
      continue;
    }

    // A name: 1..32 characters that are none of \t \n \f space < & # ;  then an optional ';'.
    size_t j = start;
    while (j < n && j - start < 32 && !is_name_stop(text[j])) ++j;
    if (j == start) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (j < n && text[j] == U';') ++j;
    const std::u32string_view name = text.substr(start, j - start);
    if (to_ascii(name, key)) {
      if (const EntityRow* row = find_row(kHtml5Entities, key)) {
        append_row(out, *row);
        i = j;
        continue;
      }
    }
    // The longest prefix of at least 2 characters that is an entity name (only the legacy names
    // without ';' can be, as ';' may only end the match). Names are ASCII, so stop at the first
    // other character.
    size_t ascii_len = 0;
    while (ascii_len < name.size() && name[ascii_len] < 0x80) ++ascii_len;
    bool replaced = false;
    for (size_t len = std::min(name.size() - 1, ascii_len); len >= 2; --len) {
      to_ascii(name.substr(0, len), key);
      if (const EntityRow* row = find_row(kHtml5Entities, key)) {
        append_row(out, *row);
        out.append(name.substr(len));
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      out.push_back(c);
      out.append(name);
    }
    i = j;
  }
  return out;
}

}  // namespace clip::text
