// The connection layer of `clip serve`: HTTP/1.1 on Boost.Beast over asio, event-driven on a few
// I/O threads, so idle or slow sockets cost a little memory and no thread. It enforces, before
// any endpoint runs:
//  - a cap on open connections (beyond it, a 503 and close) and a large listen backlog;
//  - a total time to receive a request's header, a time for its body, an idle time between
//    kept-alive requests, a time to write a response;
//  - header size (431), header field count (431), body size on the bytes received, chunked or
//    not (413), and unambiguous framing: one Content-Length, not with Transfer-Encoding, which
//    may only be "chunked" (400);
//  - the header rules of the caller (`HeaderCheck`: Host, Origin, API key, content type), so a
//    refused request's body is never read.
// A request that passes is handed to `RequestHandler` on an I/O thread; the handler answers
// through the Responder from any thread (the server runs the endpoints on its own pool), and the
// response is written back on the connection's strand. Errors before a handler runs are closed
// with a lingering close (the rest of the request is drained for a moment) so the client reads
// the status instead of a reset.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "serve/access.h"
#include "serve/http_util.h"

namespace clip::serve {

struct HttpLimits {
  size_t max_connections = 512;
  int listen_backlog = 1024;
  size_t max_header_bytes = 32 << 10;
  size_t max_header_fields = 100;
  size_t max_body_bytes = 32u << 20;
  int header_timeout_ms = 10000;  // from the first byte of a request to the end of its header
  int body_timeout_ms = 30000;    // to receive the body
  int idle_timeout_ms = 5000;     // between requests on a kept-alive connection
  int write_timeout_ms = 30000;   // to send a response
  int shutdown_grace_ms = 3000;   // stop(): how long requests in flight may still finish
};

// What the connection layer knows of a request when its body arrives.
struct RawRequest {
  std::string method, target, content_type, body;
};

using Responder = std::function<void(Response)>;
// Decides from the header alone: a response refuses the request before its body is read.
using HeaderCheck = std::function<std::optional<Response>(const RequestHead&)>;
using RequestHandler = std::function<void(RawRequest, Responder)>;

class HttpCore {
 public:
  HttpCore(HttpLimits limits, int io_threads, HeaderCheck check, RequestHandler handler);
  ~HttpCore();  // stops
  HttpCore(const HttpCore&) = delete;
  HttpCore& operator=(const HttpCore&) = delete;

  // Binds and listens (throws clip::Error naming host:port when it cannot); returns the port.
  int listen(const std::string& host, int port);
  // Starts accepting on the I/O threads.
  void run();
  // Stops accepting, closes idle connections, lets requests in flight finish for at most
  // limits.shutdown_grace_ms, then closes everything and joins the I/O threads. Idempotent.
  void stop();
  size_t open_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace clip::serve
