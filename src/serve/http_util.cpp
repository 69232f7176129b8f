#include "serve/http_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace clip::serve {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) throw HttpError(400, "the request target has a malformed %-escape");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

int status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput: return 400;
    case ErrorKind::kTooLarge: return 413;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kUnsupported: return 415;
    case ErrorKind::kIo: return 500;
    case ErrorKind::kInternal: return 500;
  }
  return 500;
}

bool Request::has_param(const std::string& name) const {
  return std::any_of(query.begin(), query.end(), [&](const auto& kv) { return kv.first == name; });
}

std::string Request::param(const std::string& name) const {
  for (const auto& [k, v] : query)
    if (k == name) return v;
  return "";
}

void parse_target(std::string_view target, std::string* path, std::vector<std::pair<std::string, std::string>>* query) {
  if (target.empty() || target[0] != '/') throw HttpError(400, "the request target is not an absolute path");
  const size_t q = target.find('?');
  *path = percent_decode(target.substr(0, q), false);
  query->clear();
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = std::min(rest.find('&'), rest.size());
    const std::string_view pair = rest.substr(0, amp);
    rest.remove_prefix(std::min(amp + 1, rest.size()));
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    query->emplace_back(percent_decode(pair.substr(0, eq), true),
                        eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true));
  }
}

void send_json(Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // Replace invalid UTF-8 (e.g. in file names) rather than fail the reply.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(Response& res, int status, const std::string& message) { send_json(res, status, {{"error", message}}); }

Response error_response(int status, const std::string& message) {
  Response res;
  send_error(res, status, message);
  return res;
}

int parse_int(const std::string& name, const std::string& text, int lo, int hi) {
  int value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < lo || value > hi)
    throw HttpError(400, "parameter " + name + " = \"" + text + "\": expected an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
  return value;
}

std::vector<const FormPart*> uploaded_files(const Request& req, std::initializer_list<const char*> names) {
  std::vector<const FormPart*> out;
  for (const FormPart& part : req.parts) {
    bool wanted = false;
    for (const char* n : names) wanted = wanted || part.name == n;
    if (wanted && !part.filename.empty()) out.push_back(&part);
  }
  return out;
}

std::string form_value(const Request& req, const std::string& name) {
  for (const FormPart& part : req.parts)
    if (part.name == name && part.filename.empty()) return part.content;
  return req.param(name);
}

std::string media_type(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.erase(0, 1);
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type;
}

}  // namespace clip::serve
