// One HTTP(S) request with libcurl: no redirects followed (the caller decides where the token
// goes), TLS verified, http and https only, bounded headers, stalled transfers cut.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace clip::hub {

struct HttpRequest {
  std::string url;
  bool head = false;                 // HEAD instead of GET
  std::vector<std::string> headers;  // "Name: value"
  // GET bodies of 2xx answers go here, with the status; returning false aborts the transfer. Other bodies are kept
  // (first 4 KiB) in HttpResponse::body for messages.
  std::function<bool(long status, const char* data, size_t size)> sink;
  // Called with (bytes so far, total or 0) now and then during the body.
  std::function<void(uint64_t, uint64_t)> progress;
};

struct HttpResponse {
  long status = 0;                             // 0 when the transfer failed
  std::map<std::string, std::string> headers;  // lowercase names, the last value of each
  std::string body;                            // non-2xx bodies, truncated
  std::string transport_error;                 // curl's message when status is 0 or the body broke
  bool aborted = false;                        // the sink returned false
  bool retryable = false;                      // reset, timeout, refused: worth another try
};

HttpResponse http_request(const HttpRequest& request);

// "https://host:port" of a URL (lowercase scheme and host), empty when it is not http(s).
std::string url_origin(const std::string& url);
// A Location header made absolute against the URL it answered.
std::string resolve_location(const std::string& base_url, const std::string& location);
// Percent-encodes a path, keeping '/' and unreserved characters.
std::string escape_path(const std::string& path);

}  // namespace clip::hub
