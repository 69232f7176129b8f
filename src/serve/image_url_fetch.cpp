#include "serve/image_url_fetch.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "hub/http.h"
#include "serve/ip_address.h"
#include "util/strings.h"

namespace clip::serve {
namespace {

using Reason = ImageUrlError::Reason;
using Clock = std::chrono::steady_clock;

std::string lowercase_name(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s.size() > 1 && s.back() == '.') s.pop_back();  // "example.com." is "example.com"
  return s;
}

// A fetch slot, given back when the fetch ends however it ends.
class Slot {
 public:
  Slot(std::mutex& mutex, int& running) : mutex_(mutex), running_(running) {}
  ~Slot() {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  std::mutex& mutex_;
  int& running_;
};

}  // namespace

ImageUrlFetcher::ImageUrlFetcher(ImageUrlLimits limits) : limits_(std::move(limits)) {
  if (limits_.max_concurrent < 1 || limits_.connect_timeout_ms < 1 || limits_.total_timeout_ms < 1 ||
      limits_.max_redirects < 0)
    throw Error("image URL limits must be positive", ErrorKind::kInternal);
  for (const std::string& entry : limits_.hosts) {
    if (entry == "*") {
      any_name_ = true;
      continue;
    }
    if (const std::string bytes = parse_ip_address(entry); !bytes.empty()) {
      addresses_.push_back(bytes);
      continue;
    }
    const std::string name = lowercase_name(entry);
    const bool well_formed =
        !name.empty() && name.size() <= 253 && name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") ==
                                                   std::string::npos;
    if (!well_formed)
      throw Error("--allow-image-urls: " + util::quoted_for_message(entry, 100) +
                  " is not a host name (letters, digits, '.', '-'), a numeric IP address, or *");
    names_.push_back(name);
  }
  if (!any_name_ && names_.empty() && addresses_.empty()) throw Error("--allow-image-urls: no host given");
}

bool ImageUrlFetcher::host_listed(const std::string& host) const {
  if (any_name_) return true;
  if (const std::string bytes = parse_ip_address(host); !bytes.empty())
    return std::find(addresses_.begin(), addresses_.end(), bytes) != addresses_.end();
  return std::find(names_.begin(), names_.end(), lowercase_name(host)) != names_.end();
}

std::vector<std::string> ImageUrlFetcher::allowed_addresses(const std::string& host,
                                                            const std::string& quoted_url) const {
  std::string name = host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  // The system resolver's own timeouts bound this (resolv.conf); it is not cut by total_timeout_ms.
  if (const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &found); rc != 0)
    throw ImageUrlError(Reason::kFailed, quoted_url + ": cannot resolve host \"" + name + "\" (" + gai_strerror(rc) + ")");
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(found, freeaddrinfo);
  std::vector<std::string> allowed, refused;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    const std::string bytes = socket_address_bytes(a->ai_addr);
    if (bytes.empty()) continue;
    const std::string text = ip_address_text(bytes);
    if (std::find(allowed.begin(), allowed.end(), text) != allowed.end()) continue;
    const std::string kind = non_public_address_kind(bytes);
    const bool listed = std::find(addresses_.begin(), addresses_.end(), bytes) != addresses_.end();
    if (kind.empty() || listed) allowed.push_back(text);
    else refused.push_back(text + " (" + kind + ")");
  }
  if (allowed.empty()) {
    std::string list;
    for (const std::string& r : refused) list += (list.empty() ? "" : ", ") + r;
    throw ImageUrlError(Reason::kNotAllowed,
                        quoted_url + ": host \"" + name + "\" resolves to " + (list.empty() ? "no address" : list) +
                            ": not a public address, and not listed in --allow-image-urls (list the address "
                            "itself to allow it)");
  }
  return allowed;
}

std::string ImageUrlFetcher::fetch(const std::string& url, uint64_t max_bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_ >= limits_.max_concurrent)
      throw ImageUrlError(Reason::kBusy, "the server is already fetching " + std::to_string(running_) +
                                             " image URLs, its limit; retry in a moment");
    ++running_;
  }
  const Slot slot(mutex_, running_);
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(limits_.total_timeout_ms);
  std::string current = url;
  for (int hop = 0;; ++hop) {
    const std::string quoted = util::quoted_for_message(current, 200);
    hub::UrlParts parts;
    try {
      parts = hub::parse_http_url(current);
    } catch (const Error& e) {
      throw ImageUrlError(Reason::kInvalid, quoted + ": " + e.what());
    }
    if (!host_listed(parts.host))
      throw ImageUrlError(Reason::kNotAllowed, quoted + ": host \"" + parts.host +
                                                   "\" is not in --allow-image-urls" +
                                                   (hop > 0 ? " (a redirect from " + util::quoted_for_message(url, 200) + ")" : ""));
    hub::HttpRequest request;
    request.url = parts.url;
    request.pinned_addresses = allowed_addresses(parts.host, quoted);
    const long left_ms =
        static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left_ms <= 0)
      throw ImageUrlError(Reason::kTimeout, quoted + ": not fetched within " +
                                                std::to_string(limits_.total_timeout_ms) + " ms");
    request.total_timeout_ms = left_ms;
    request.connect_timeout_ms = std::min(limits_.connect_timeout_ms, left_ms);
    request.max_body_bytes = max_bytes;
    request.headers = {"Accept: image/*"};
    std::string body;
    request.sink = [&body](long, const char* data, size_t size) {
      body.append(data, size);
      return true;
    };
    const hub::HttpResponse response = hub::http_request(request);
    if (response.too_large)
      throw ImageUrlError(Reason::kTooLarge, quoted + ": the image is larger than the limit of " +
                                                 std::to_string(max_bytes) + " bytes (--max-body-mib, for all the "
                                                 "images of a request together)");
    if (response.timed_out)
      throw ImageUrlError(Reason::kTimeout, quoted + ": not fetched within the time limit (" +
                                                std::to_string(limits_.connect_timeout_ms) + " ms to connect, " +
                                                std::to_string(limits_.total_timeout_ms) + " ms in all)");
    if (response.address_refused)
      throw ImageUrlError(Reason::kNotAllowed, quoted + ": the connection went to an address that was not checked");
    if (response.status == 0)
      throw ImageUrlError(Reason::kFailed, quoted + ": " + response.transport_error);
    if (response.status >= 300 && response.status < 400 && !response.redirect_url.empty()) {
      if (hop >= limits_.max_redirects)
        throw ImageUrlError(Reason::kFailed, util::quoted_for_message(url, 200) + ": more than " +
                                                 std::to_string(limits_.max_redirects) + " redirects");
      current = response.redirect_url;
      continue;
    }
    if (response.status < 200 || response.status >= 300)
      throw ImageUrlError(Reason::kFailed, quoted + ": the server answered HTTP " + std::to_string(response.status));
    return body;
  }
}

}  // namespace clip::serve
