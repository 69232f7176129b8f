#include "text/utf8.h"

namespace clip::text {

std::u32string utf8_to_u32(std::string_view bytes) {
  std::u32string out;
  utf8_to_u32(bytes, out);
  return out;
}

void utf8_to_u32(std::string_view bytes, std::u32string& out) {
  out.clear();
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    const util::Utf8Step step = util::decode_utf8_at(bytes, i);
    out.push_back(step.valid ? step.code_point : 0xFFFD);
    i += step.length;
  }
}

std::string u32_to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

bool is_ascii(std::string_view bytes) {
  for (unsigned char c : bytes)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace clip::text
