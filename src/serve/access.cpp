#include "serve/access.h"

#include <algorithm>
#include <cctype>

namespace clip::serve {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_wildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host == "[::]" || host.empty();
}

// "::1" → "[::1]": the form a Host header uses for an IPv6 address.
std::string host_form(const std::string& host) {
  return host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]";
}

bool constant_time_equal(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = given.empty() ? 0 : static_cast<unsigned char>(given[i % given.size()]);
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

AccessPolicy::AccessPolicy(const std::string& bound_host, int port, const std::vector<std::string>& allowed_hosts,
                           std::string api_key)
    : api_key_(std::move(api_key)) {
  std::vector<std::string> names;
  if (is_loopback_host(bound_host)) {
    names = {"localhost", "127.0.0.1", "[::1]"};
    if (bound_host != "localhost" && bound_host != "::1" && bound_host != "[::1]") names.push_back(bound_host);
  } else if (!is_wildcard(bound_host)) {
    names.push_back(host_form(bound_host));
  }
  for (const std::string& h : allowed_hosts) {
    if (h == "*") any_host_ = true;
    // An entry with a port matches only that Host; one without, the name with our port.
    if (h.find(':') != std::string::npos && h.front() != '[') {
      hosts_.push_back(lower(h));
      continue;
    }
    names.push_back(h);
  }
  if (is_wildcard(bound_host) && allowed_hosts.empty()) any_host_ = true;
  for (const std::string& n : names) {
    hosts_.push_back(lower(n) + ":" + std::to_string(port));
    if (port == 80) hosts_.push_back(lower(n));
  }
}

bool AccessPolicy::host_allowed(std::string_view host) const {
  if (any_host_) return true;
  const std::string h = lower(host);
  return std::find(hosts_.begin(), hosts_.end(), h) != hosts_.end();
}

std::optional<Response> AccessPolicy::check(const RequestHead& head, bool needs_key) const {
  if (!head.has_host) return error_response(400, "the request has no Host header");
  if (!host_allowed(head.host))
    return error_response(403,
                          "Host \"" + std::string(head.host) +
                              "\" is not a name of this server (start `clip serve` with --allowed-hosts to add it)");
  // Our own origin is the scheme and the Host the request was sent to; anything else (another
  // site, "null" from a sandboxed or file: page) is a page of someone else.
  if (!head.origin.empty() && lower(head.origin) != "http://" + lower(head.host))
    return error_response(
        403, "requests from the web page of another origin (\"" + std::string(head.origin) + "\") are not allowed");
  if (needs_key && !api_key_.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    const std::string_view auth = head.authorization;
    const bool bearer = auth.size() > kBearer.size() && lower(auth.substr(0, kBearer.size())) == "bearer ";
    if (!bearer || !constant_time_equal(auth.substr(kBearer.size()), api_key_)) {
      Response r = error_response(401, "this server needs an API key: send \"Authorization: Bearer KEY\"");
      r.set_header("WWW-Authenticate", "Bearer");
      return r;
    }
  }
  if (head.method == "POST") {
    const std::string type = media_type(head.content_type);
    if (type != "application/json" && type != "multipart/form-data")
      return error_response(415, "POST " + std::string(head.path) +
                                     " takes application/json or multipart/form-data, not \"" +
                                     std::string(head.content_type) + "\"");
  }
  return std::nullopt;
}

}  // namespace clip::serve
