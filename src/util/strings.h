// Small string helpers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clip::util {

// `s` in double quotes for an error message, control bytes shown as \xNN (so a message never carries
// them to a terminal); cut after `max_bytes` with "..." when longer.
inline std::string quoted_for_message(std::string_view s, size_t max_bytes = std::string_view::npos) {
  constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out + "\"";
}

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Splits on '\n' (a final empty piece is kept, so "a\n" gives {"a", ""}); no other processing.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));
      return lines;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace clip::util
