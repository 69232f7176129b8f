#include "text/clean.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>

#include "text/ftfy.h"
#include "text/pretokenize.h"
#include "text/utf8.h"

namespace clip::text {

std::u32string python_lower(std::u32string_view text) {
  bool ascii = true;
  for (char32_t c : text) ascii &= c < 0x80;
  if (ascii) {
    std::u32string out(text);
    for (char32_t& c : out)
      if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    return out;
  }
  icu::UnicodeString s =
      icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()), static_cast<int32_t>(text.size()));
  s.toLower(icu::Locale::getRoot());
  std::u32string out(static_cast<size_t>(s.countChar32()), U'\0');
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = s.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  out.resize(static_cast<size_t>(n));
  return out;
}

void python_lower_in_place(std::u32string& text) {
  for (char32_t c : text) {
    if (c == 0x130 || c == 0x3A3) {
      text = python_lower(text);
      return;
    }
  }
  for (char32_t& c : text) {
    if (c < 0x80) {
      if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    } else {
      c = static_cast<char32_t>(u_tolower(static_cast<UChar32>(c)));
    }
  }
}

std::u32string_view python_strip(std::u32string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && is_python_space(text[b])) ++b;
  while (e > b && is_python_space(text[e - 1])) --e;
  return text.substr(b, e - b);
}

std::u32string collapse_whitespace(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (is_regex_space(text[i])) {
      out.push_back(U' ');
      while (i < text.size() && is_regex_space(text[i])) ++i;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

void strip_and_collapse_in_place(std::u32string& text) {
  const std::u32string_view stripped = python_strip(text);
  const size_t end = static_cast<size_t>(stripped.data() - text.data()) + stripped.size();
  // Writing never overtakes reading: each character read writes at most one.
  size_t w = 0;
  for (size_t r = end - stripped.size(); r < end;) {
    if (is_regex_space(text[r])) {
      text[w++] = U' ';
      while (r < end && is_regex_space(text[r])) ++r;
    } else {
      text[w++] = text[r++];
    }
  }
  text.resize(w);
  const std::u32string_view again = python_strip(text);
  if (again.size() != text.size()) text = std::u32string(again);
}

bool clean_ascii_fast(std::string_view text, std::string& out) {
  out.clear();
  out.reserve(text.size());
  bool pending_space = false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r') {
      pending_space = !out.empty();
      continue;
    }
    if (c < 0x20 || c > 0x7E || c == '&') return false;
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
  }
  return true;
}

namespace {
// For each byte: its lowercase where lower_ascii_fast accepts it, else 0.
constexpr std::array<char, 256> kAsciiLower = [] {
  std::array<char, 256> t{};
  for (int c = 0x20; c <= 0x7E; ++c) t[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  t['&'] = 0;
  for (char c : {'\t', '\n', '\f', '\r'}) t[static_cast<unsigned char>(c)] = c;
  return t;
}();
}  // namespace

bool lower_ascii_fast(std::string_view text, char* out) {
  bool ok = true;  // checked once at the end: no branch per byte
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = kAsciiLower[static_cast<unsigned char>(text[i])];
    out[i] = c;
    ok &= c != 0;
  }
  return ok;
}

void clean_text_fast(std::string_view utf8, std::u32string& out) {
  utf8_to_u32(utf8, out);
  if (!ftfy_leaves_unchanged(out)) out = ftfy_fix_text(out);
  // Without '&' html_unescape has nothing to do.
  if (out.find(U'&') != std::u32string::npos) out = html_unescape(html_unescape(out));
  strip_and_collapse_in_place(out);
  python_lower_in_place(out);
}

std::u32string clean_text(std::string_view utf8) {
  const std::u32string fixed = ftfy_fix_text(utf8_to_u32(utf8));
  const std::u32string unescaped = html_unescape(html_unescape(fixed));
  const std::u32string collapsed = collapse_whitespace(python_strip(unescaped));
  return python_lower(python_strip(collapsed));
}

}  // namespace clip::text
