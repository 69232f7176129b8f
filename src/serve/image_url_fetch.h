// Images fetched from http(s) URLs for `clip serve --allow-image-urls HOSTS` (docs/serve.md),
// guarded against server-side request forgery: only the listed hosts; their names resolved here,
// and an address that is not public (loopback, private, link-local, ...: ip_address.h) used only
// when that very address is listed; the connection pinned to the checked addresses (no second
// DNS answer, no proxy); every redirect checked as a new URL; the body counted as it arrives
// against a byte limit; connect and total time limits; at most N fetches at once (more: busy,
// not queued, so waiting requests never hold the endpoint threads). libcurl via hub/http.h.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "clip/error.h"

namespace clip::serve {

struct ImageUrlLimits {
  std::vector<std::string> hosts;  // names, numeric addresses ("10.0.0.5", "[fd00::1]"), or "*" for any name
  long connect_timeout_ms = 5000;
  long total_timeout_ms = 10000;  // all redirects included
  int max_concurrent = 4;         // fetches at once, in the whole server
  int max_redirects = 3;
};

// Why a fetch failed; the message names the URL and what was wrong.
class ImageUrlError : public Error {
 public:
  enum class Reason {
    kInvalid,     // not an absolute http(s) URL
    kNotAllowed,  // host not listed, or only non-public addresses that are not listed
    kFailed,      // no connection, an HTTP error status, too many redirects
    kTimeout,     // connect or total time limit
    kTooLarge,    // the body went over the byte limit
    kBusy,        // max_concurrent fetches already running
  };
  ImageUrlError(Reason reason, const std::string& message)
      : Error(message, reason == Reason::kTooLarge ? ErrorKind::kTooLarge : ErrorKind::kInvalidInput),
        reason_(reason) {}
  Reason reason() const { return reason_; }

 private:
  Reason reason_;
};

class ImageUrlFetcher {
 public:
  // Throws clip::Error naming --allow-image-urls for an empty or malformed host entry.
  explicit ImageUrlFetcher(ImageUrlLimits limits);

  // The body of `url` (a 2xx answer), at most `max_bytes` of it; throws ImageUrlError.
  std::string fetch(const std::string& url, uint64_t max_bytes);

 private:
  bool host_listed(const std::string& host) const;
  // The host's addresses that may be reached (numeric text), or ImageUrlError kNotAllowed/kFailed.
  std::vector<std::string> allowed_addresses(const std::string& host, const std::string& quoted_url) const;

  ImageUrlLimits limits_;
  std::vector<std::string> names_;      // lowercase, no trailing dot
  std::vector<std::string> addresses_;  // listed numeric addresses, as bytes (parse_ip_address)
  bool any_name_ = false;               // "*"

  std::mutex mutex_;
  int running_ = 0;
};

}  // namespace clip::serve
