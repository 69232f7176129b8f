// Who may use the service, decided from a request's header before its body is read:
//  - Host must name this server (DNS rebinding): bound to loopback, `localhost`, `127.0.0.1` or
//    `[::1]` with the port; bound to another address, that address or a name of --allowed-hosts
//    (a wildcard address without --allowed-hosts accepts any Host; `serve` warns). → 403
//  - a request that carries an Origin other than the server's own (a page of another site) → 403;
//  - POST bodies must be application/json or multipart/form-data → 415 (a browser sends JSON
//    cross-origin only after a CORS preflight, which this server never grants);
//  - with an API key, `Authorization: Bearer KEY` on everything but /healthz and the page's own
//    files → 401 (compared in constant time).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "serve/http_util.h"

namespace clip::serve {

// The header fields the rules read (empty when absent).
struct RequestHead {
  std::string_view method, path, host, origin, authorization, content_type;
  bool has_host = false;
};

class AccessPolicy {
 public:
  AccessPolicy() = default;
  // `bound_host` as given to --host; `port` the bound port.
  AccessPolicy(const std::string& bound_host, int port, const std::vector<std::string>& allowed_hosts,
               std::string api_key);

  // The refusal of a request, or nothing when it may proceed. `needs_key`: the path is an API
  // endpoint (not /healthz, not the page's files).
  std::optional<Response> check(const RequestHead& head, bool needs_key) const;

  bool host_allowed(std::string_view host) const;
  bool accepts_any_host() const { return any_host_; }

 private:
  std::vector<std::string> hosts_;  // lower-case "name:port" (and "name" on port 80)
  bool any_host_ = false;
  std::string api_key_;
};

bool is_loopback_host(const std::string& host);
// Equal strings, in time that depends only on the length of `expected`.
bool constant_time_equal(std::string_view given, std::string_view expected);

}  // namespace clip::serve
