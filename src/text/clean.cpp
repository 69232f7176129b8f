#include "text/clean.h"

#include <unicode/locid.h>
#include <unicode/unistr.h>

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
  icu::UnicodeString s = icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                                       static_cast<int32_t>(text.size()));
  s.toLower(icu::Locale::getRoot());
  std::u32string out(static_cast<size_t>(s.countChar32()), U'\0');
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = s.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  out.resize(static_cast<size_t>(n));
  return out;
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

std::u32string clean_text(std::string_view utf8) {
  const std::u32string fixed = ftfy_fix_text(utf8_to_u32(utf8));
  const std::u32string unescaped = html_unescape(html_unescape(fixed));
  const std::u32string collapsed = collapse_whitespace(python_strip(unescaped));
  return python_lower(python_strip(collapsed));
}

}  // namespace clip::text
