#include "serve/multipart.h"

#include <algorithm>
#include <cctype>

#include "clip/error.h"

namespace clip::serve {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `; key=value; key="quoted value"` parameters after a header's first token. Returns false when
// they are malformed. Backslash escapes in quoted strings are honoured.
bool parse_parameters(std::string_view s, std::vector<std::pair<std::string, std::string>>* out) {
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i == s.size()) break;
    if (s[i] != ';') return false;
    ++i;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const size_t eq = s.find('=', i);
    if (eq == std::string_view::npos) return false;
    std::string key(trim(s.substr(i, eq - i)));
    if (key.empty()) return false;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    i = eq + 1;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          value += s[i + 1];
          i += 2;
        } else if (s[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          value += s[i++];
        }
      }
      if (!closed) return false;
    } else {
      const size_t end = std::min(s.find(';', i), s.size());
      value = std::string(trim(s.substr(i, end - i)));
      i = end;
    }
    out->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

[[noreturn]] void malformed(const std::string& what) {
  throw Error("the multipart/form-data body is malformed: " + what);
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  if (!iequal(trim(content_type.substr(0, semi)), "multipart/form-data"))
    throw Error("Content-Type \"" + std::string(content_type) + "\": expected multipart/form-data");
  std::vector<std::pair<std::string, std::string>> params;
  if (semi == std::string_view::npos || !parse_parameters(content_type.substr(semi), &params))
    throw Error("Content-Type \"" + std::string(content_type) + "\": expected a boundary parameter");
  std::string boundary;
  int count = 0;
  for (const auto& [k, v] : params)
    if (k == "boundary") boundary = v, ++count;
  // RFC 2046: 1 to 70 characters, not ending in a space.
  if (count != 1 || boundary.empty() || boundary.size() > 70 || boundary.back() == ' ' ||
      boundary.find_first_of("\r\n") != std::string::npos)
    throw Error("Content-Type \"" + std::string(content_type) + "\": expected one boundary of 1 to 70 characters");
  return boundary;
}

std::vector<FormPart> parse_multipart(std::string_view body, std::string_view content_type,
                                      const MultipartLimits& limits) {
  const std::string boundary = multipart_boundary(content_type);
  const std::string first = "--" + boundary;
  const std::string delimiter = "\r\n--" + boundary;
  if (body.substr(0, first.size()) != first) malformed("it does not start with the boundary");
  size_t pos = first.size();
  std::vector<FormPart> parts;
  for (;;) {
    // After a delimiter: "--" closes the body, CRLF starts a part.
    if (body.substr(pos, 2) == "--") {
      if (parts.empty()) malformed("it has no parts");
      return parts;
    }
    if (body.substr(pos, 2) != "\r\n") malformed("a boundary is not followed by CRLF or \"--\"");
    pos += 2;
    if (parts.size() == limits.max_parts)
      throw Error("the form has more than " + std::to_string(limits.max_parts) + " parts", ErrorKind::kTooLarge);
    const size_t header_end = body.find("\r\n\r\n", pos);
    // A part may have no headers at all: then the blank line follows the boundary at once.
    const bool no_headers = body.substr(pos, 2) == "\r\n";
    const size_t headers_size =
        no_headers ? 0 : (header_end == std::string_view::npos ? body.size() - pos : header_end - pos);
    if (headers_size > limits.max_part_header_bytes)
      throw Error("a form part's headers exceed " + std::to_string(limits.max_part_header_bytes) + " bytes",
                  ErrorKind::kTooLarge);
    if (!no_headers && header_end == std::string_view::npos) malformed("a part's headers do not end");
    FormPart part;
    bool disposition = false;
    std::string_view headers = body.substr(pos, headers_size);
    while (!headers.empty()) {
      const size_t eol = std::min(headers.find("\r\n"), headers.size());
      const std::string_view line = headers.substr(0, eol);
      headers.remove_prefix(std::min(eol + 2, headers.size()));
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) malformed("a part header has no name");
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = trim(line.substr(colon + 1));
      if (iequal(name, "Content-Disposition")) {
        if (disposition) malformed("a part has two Content-Disposition headers");
        disposition = true;
        const size_t semi = value.find(';');
        if (!iequal(trim(value.substr(0, semi)), "form-data"))
          malformed("a part's Content-Disposition is not form-data");
        std::vector<std::pair<std::string, std::string>> params;
        if (semi == std::string_view::npos || !parse_parameters(value.substr(semi), &params))
          malformed("a part's Content-Disposition has no name");
        bool has_name = false;
        for (auto& [k, v] : params) {
          if (k == "name") part.name = std::move(v), has_name = true;
          if (k == "filename") part.filename = std::move(v);
        }
        if (!has_name || part.name.empty()) malformed("a part's Content-Disposition has no name");
      } else if (iequal(name, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    if (!disposition) malformed("a part has no Content-Disposition header");
    pos = no_headers ? pos + 2 : header_end + 4;
    const size_t end = body.find(delimiter, pos);
    if (end == std::string_view::npos) malformed("no closing boundary");
    part.content = std::string(body.substr(pos, end - pos));
    parts.push_back(std::move(part));
    pos = end + delimiter.size();
  }
}

}  // namespace clip::serve
