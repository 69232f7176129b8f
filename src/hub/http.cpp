#include "hub/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include "clip/error.h"

namespace clip::hub {
namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxErrorBody = 4096;

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  size_t header_bytes = 0;
  uint64_t body_bytes = 0;  // of a 2xx answer
};

// An address in network byte order: 4 bytes (IPv4) or 16 (IPv6).
std::string address_bytes(const std::string& numeric) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, numeric.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, numeric.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 16);
  throw Error("pinned address " + numeric + " is not a numeric IPv4 or IPv6 address", ErrorKind::kInternal);
}

// The pinned addresses and whether libcurl tried another one.
struct SocketGuard {
  std::vector<std::string> allowed;  // address_bytes of each
  bool refused = false;
};

// libcurl's CURLOPT_OPENSOCKETFUNCTION: a socket only for a pinned address.
curl_socket_t open_pinned_socket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* guard = static_cast<SocketGuard*>(user);
  std::string bytes;
  if (address->family == AF_INET && address->addrlen >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address->addr);
    bytes.assign(reinterpret_cast<const char*>(&in->sin_addr), 4);
  } else if (address->family == AF_INET6 && address->addrlen >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address->addr);
    bytes.assign(reinterpret_cast<const char*>(&in6->sin6_addr), 16);
  }
  if (bytes.empty() || std::find(guard->allowed.begin(), guard->allowed.end(), bytes) == guard->allowed.end()) {
    guard->refused = true;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype, address->protocol);
}

// "host:port:addr,[v6addr]" for CURLOPT_RESOLVE; empty when the host is an address itself.
std::string resolve_entry(const std::string& url, const std::vector<std::string>& addresses) {
  const UrlParts parts = parse_http_url(url);
  if (parts.host.empty() || parts.host[0] == '[') return "";
  std::string entry = parts.host + ":" + std::to_string(parts.port) + ":";
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (i) entry += ',';
    entry += addresses[i].find(':') == std::string::npos ? addresses[i] : "[" + addresses[i] + "]";
  }
  return entry;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->header_bytes += n;
  if (t->header_bytes > kMaxHeaderBytes) return 0;  // aborts: a hostile server's endless headers
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (e.g. after 100 Continue): start over
    t->response->headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  std::string value = line.substr(colon + 1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
  size_t start = 0;
  while (start < value.size() && std::isspace(static_cast<unsigned char>(value[start]))) ++start;
  t->response->headers[lower(line.substr(0, colon))] = value.substr(start);
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->progress) t->request->progress(static_cast<uint64_t>(now), static_cast<uint64_t>(total));
  return 0;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

HttpResponse http_request(const HttpRequest& request) {
  global_init();
  HttpResponse response;
  // Checked before a handle exists: these may throw.
  SocketGuard guard;
  std::string resolve_line;
  if (!request.pinned_addresses.empty()) {
    for (const std::string& a : request.pinned_addresses) guard.allowed.push_back(address_bytes(a));
    resolve_line = resolve_entry(request.url, request.pinned_addresses);
  }
  CURL* curl = curl_easy_init();
  if (!curl) throw Error("libcurl: cannot create a handle", ErrorKind::kInternal);
  Transfer transfer{&request, &response};
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) {
    for (unsigned char c : h)
      if (c < 0x20 && c != '\t') {
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        throw Error("an HTTP header holds a control character (a token or name with a newline?)");
      }
    headers = curl_slist_append(headers, h.c_str());
  }
  curl_slist* resolve = nullptr;
  if (!request.pinned_addresses.empty()) {
    if (!resolve_line.empty()) resolve = curl_slist_append(resolve, resolve_line.c_str());
    curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_pinned_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &guard);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");  // a proxy would connect elsewhere: none, whatever the environment says
  }
  char error[CURL_ERROR_SIZE] = {0};
  // The body writer needs the status: libcurl gives it through CURLINFO_RESPONSE_CODE once the
  // headers are done, so the handle travels with the transfer.
  struct Ctx {
    Transfer* transfer;
    CURL* curl;
  } ctx{&transfer, curl};
  auto body = +[](char* data, size_t size, size_t count, void* user) -> size_t {
    auto* c = static_cast<Ctx*>(user);
    const size_t n = size * count;
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    const uint64_t limit = c->transfer->request->max_body_bytes;
    if (code >= 200 && code < 300 && limit > 0 && (c->transfer->body_bytes += n) > limit) {
      c->transfer->response->too_large = true;  // counted on what arrived, whatever Content-Length said
      return 0;
    }
    if (code >= 200 && code < 300 && c->transfer->request->sink) {
      if (!c->transfer->request->sink(code, data, n)) {
        c->transfer->response->aborted = true;
        return 0;
      }
      return n;
    }
    std::string& kept = c->transfer->response->body;
    if (kept.size() < kMaxErrorBody) kept.append(data, std::min(n, kMaxErrorBody - kept.size()));
    return n;
  };
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOBODY, request.head ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, request.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request.total_timeout_ms);
  if (request.max_body_bytes > 0)  // refused at once when Content-Length says more
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(request.max_body_bytes));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a transfer stalled for 60 s is cut
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "clip++/0.1");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, request.progress ? 0L : 1L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  response.status = code;
  if (code >= 300 && code < 400) {
    char* location = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
      response.redirect_url = location;
  }
  response.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
  response.address_refused = guard.refused;
  if (rc == CURLE_FILESIZE_EXCEEDED) response.too_large = true;
  if (rc != CURLE_OK) {
    response.transport_error = error[0] ? error : curl_easy_strerror(rc);
    response.retryable = rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR ||
                         rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE || rc == CURLE_GOT_NOTHING ||
                         rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
    if (response.aborted || response.too_large) response.retryable = false;
  }
  curl_slist_free_all(resolve);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

UrlParts parse_http_url(const std::string& url) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> handle(curl_url(), curl_url_cleanup);
  if (!handle) throw Error("libcurl: cannot create a URL handle", ErrorKind::kInternal);
  auto get = [&](CURLUPart part, unsigned flags) {
    char* value = nullptr;
    std::string out;
    if (curl_url_get(handle.get(), part, &value, flags) == CURLUE_OK && value) out = value;
    curl_free(value);
    return out;
  };
  const CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0);
  if (rc != CURLUE_OK) throw Error("not a valid URL (" + std::string(curl_url_strerror(rc)) + ")");
  UrlParts parts;
  parts.scheme = lower(get(CURLUPART_SCHEME, 0));
  if (parts.scheme != "http" && parts.scheme != "https")
    throw Error("not an http or https URL (scheme \"" + parts.scheme + "\")");
  parts.host = lower(get(CURLUPART_HOST, 0));
  if (parts.host.empty()) throw Error("the URL has no host");
  const std::string port = get(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  parts.port = port.empty() ? 0 : std::stoi(port);  // libcurl checked it: 0..65535
  parts.url = get(CURLUPART_URL, 0);
  return parts;
}

std::string url_origin(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return "";
  const size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  return scheme + "://" +
         lower(
             url.substr(scheme_end + 3, host_end == std::string::npos ? std::string::npos : host_end - scheme_end - 3));
}

std::string resolve_location(const std::string& base_url, const std::string& location) {
  if (!url_origin(location).empty()) return location;
  if (!location.empty() && location[0] == '/') return url_origin(base_url) + location;
  const size_t slash = base_url.rfind('/');
  return base_url.substr(0, slash + 1) + location;
}

std::string escape_path(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace clip::hub
