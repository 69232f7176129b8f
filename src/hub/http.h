// One HTTP(S) request with libcurl: no redirects followed (the caller decides where the token
// goes, or whether the next hop is allowed), TLS verified, http and https only, bounded headers,
// stalled transfers cut. The only HTTP client of CLIP++: the hub's downloads and the server's
// image URL fetches (src/serve/image_url_fetch.cpp) both use it.
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
  // Non-empty: numeric addresses (IPv4 or IPv6, no brackets) the connection may go to. The URL's
  // host is resolved to these (CURLOPT_RESOLVE: no DNS lookup of its own, so a second answer
  // cannot swap the address), every socket libcurl opens is checked against them, and no proxy
  // is used.
  std::vector<std::string> pinned_addresses;
  long connect_timeout_ms = 30000;
  long total_timeout_ms = 0;  // the whole transfer (0: none; a stalled one is still cut after 60 s)
  uint64_t max_body_bytes = 0;  // 2xx bodies: refused from Content-Length, cut on the bytes received (0: none)
};

struct HttpResponse {
  long status = 0;                             // 0 when the transfer failed
  std::map<std::string, std::string> headers;  // lowercase names, the last value of each
  std::string body;                            // non-2xx bodies, truncated
  std::string transport_error;                 // curl's message when status is 0 or the body broke
  bool aborted = false;                        // the sink returned false
  bool retryable = false;                      // reset, timeout, refused: worth another try
  bool timed_out = false;                      // connect_timeout_ms or total_timeout_ms ran out
  bool too_large = false;                      // the body went over max_body_bytes
  bool address_refused = false;                // libcurl tried an address outside pinned_addresses
  std::string redirect_url;                    // a 3xx answer's Location, made absolute by libcurl
};

// The parts of an http(s) URL as libcurl reads them (so a check of the host checks what libcurl
// will connect to): lowercase scheme, host (IPv6 in brackets, IPv4 numbers normalized), port
// (the scheme's default when absent), and the URL as libcurl writes it back.
struct UrlParts {
  std::string scheme, host, url;
  int port = 0;
};
// Throws clip::Error (kInvalidInput) when `url` is not an absolute http or https URL.
UrlParts parse_http_url(const std::string& url);

HttpResponse http_request(const HttpRequest& request);

// "https://host:port" of a URL (lowercase scheme and host), empty when it is not http(s).
std::string url_origin(const std::string& url);
// A Location header made absolute against the URL it answered.
std::string resolve_location(const std::string& base_url, const std::string& location);
// Percent-encodes a path, keeping '/' and unreserved characters.
std::string escape_path(const std::string& path);

}  // namespace clip::hub
