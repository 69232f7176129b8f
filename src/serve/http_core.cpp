#include "serve/http_core.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "clip/error.h"

namespace clip::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

// How long a refused request's remaining bytes are read and dropped before the socket closes
// (closing with unread data sends a reset, and the client may lose the error response).
constexpr milliseconds kLingerTime{2000};
// Sent, without waiting, to a connection beyond the cap.
std::string busy_reply() {
  const std::string body = R"({"error": "too many open connections; retry shortly"})";
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
}

bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace

class Connection;

struct HttpCore::Impl {
  HttpLimits limits;
  int io_threads = 1;
  HeaderCheck check;
  RequestHandler handler;

  // Declared before the io_context: connections destroyed with its queued handlers unregister here.
  mutable std::mutex mutex;
  std::condition_variable closed_cv;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
  std::atomic<bool> stopping{false};

  std::mutex stop_mutex;
  bool stopped = false;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  const std::string busy = busy_reply();
  std::vector<std::thread> threads;

  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void forget(Connection* c) {
    std::lock_guard<std::mutex> lock(mutex);
    connections.erase(c);
    closed_cv.notify_all();
  }
  std::vector<std::shared_ptr<Connection>> snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<std::shared_ptr<Connection>> out;
    for (auto& [raw, weak] : connections)
      if (auto c = weak.lock()) out.push_back(std::move(c));
    return out;
  }
  // Waits until no connection is open or the deadline passes; true when none is open.
  bool wait_closed(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex);
    return closed_cv.wait_until(lock, deadline, [this] { return connections.empty(); });
  }
};

// One client connection: reads a request (header, checks, body), hands it to the handler, writes
// the response, and waits for the next one while kept alive. All of it on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpCore::Impl& core, tcp::socket&& socket) : core_(core), stream_(std::move(socket)) {}
  ~Connection() { core_.forget(this); }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(true); });
  }
  // From stop(): closes the connection unless it is answering a request (`force`: even then).
  void shut(bool force) {
    net::post(stream_.get_executor(), [self = shared_from_this(), force] {
      if (force || !self->busy_) self->close();
    });
  }

 private:
  const HttpLimits& limits() const { return core_.limits; }

  void read_request(bool first) {
    busy_ = false;
    if (core_.stopping) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().max_header_bytes));
    parser_->body_limit(limits().max_body_bytes);
    if (first || buffer_.size() > 0) {
      stream_.expires_after(milliseconds(limits().header_timeout_ms));
      return read_header();
    }
    // Kept alive: wait (idle timeout) for the first bytes of the next request.
    stream_.expires_after(milliseconds(limits().idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->close();
      self->buffer_.commit(n);
      self->stream_.expires_after(milliseconds(self->limits().header_timeout_ms));
      self->read_header();
    });
  }

  void read_header() {
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec == http::error::header_limit)
      return fail(error_response(
          431, "the request header is larger than " + std::to_string(limits().max_header_bytes) + " bytes"));
    if (ec == http::error::body_limit) return fail(body_too_large());
    if (ec) {
      if (is_parse_error(ec)) return fail(error_response(400, "malformed request: " + ec.message()));
      return close();  // timeout, reset, end of stream
    }
    const auto& header = parser_->get();
    version_ = header.version();
    size_t fields = 0, content_lengths = 0, transfer_encodings = 0;
    bool only_chunked = true;
    for (const auto& field : header) {
      ++fields;
      if (field.name() == http::field::content_length) {
        ++content_lengths;
        if (field.value().find(',') != beast::string_view::npos) ++content_lengths;  // "5, 5"
      }
      if (field.name() == http::field::transfer_encoding) {
        ++transfer_encodings;
        only_chunked = only_chunked && beast::iequals(field.value(), "chunked");
      }
    }
    if (fields > limits().max_header_fields)
      return fail(error_response(431, "the request has " + std::to_string(fields) + " header fields, more than " +
                                          std::to_string(limits().max_header_fields)));
    // Ambiguous framing is what request smuggling is made of: refuse it, as nginx does.
    if (content_lengths > 1) return fail(error_response(400, "the request has more than one Content-Length"));
    if (transfer_encodings > 0 && content_lengths > 0)
      return fail(error_response(400, "the request has both Content-Length and Transfer-Encoding"));
    if (transfer_encodings > 1 || !only_chunked)
      return fail(error_response(400, "Transfer-Encoding: only a single \"chunked\" is accepted"));

    const beast::string_view target = header.target();
    RequestHead head;
    head.method = std::string_view(header.method_string().data(), header.method_string().size());
    head.path = std::string_view(target.data(), std::min(target.find('?'), target.size()));
    const auto view = [&](http::field f) {
      const auto it = header.find(f);
      return it == header.end() ? std::string_view() : std::string_view(it->value().data(), it->value().size());
    };
    head.has_host = header.find(http::field::host) != header.end();
    head.host = view(http::field::host);
    head.origin = view(http::field::origin);
    head.authorization = view(http::field::authorization);
    head.content_type = view(http::field::content_type);
    if (std::optional<Response> refusal = core_.check(head)) return fail(std::move(*refusal));
    if (parser_->content_length() && *parser_->content_length() > limits().max_body_bytes)
      return fail(body_too_large());

    if (beast::iequals(header[http::field::expect], "100-continue") && !parser_->is_done()) {
      continue_.emplace(http::status::continue_, version_);
      return http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_body({});
    stream_.expires_after(milliseconds(limits().body_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return fail(body_too_large());
    if (ec) {
      if (is_parse_error(ec)) return fail(error_response(400, "malformed request body: " + ec.message()));
      return close();
    }
    busy_ = true;
    stream_.expires_never();
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    const bool keep_alive = message.keep_alive();
    RawRequest raw;
    raw.method = std::string(message.method_string());
    raw.target = std::string(message.target());
    raw.content_type = std::string(message[http::field::content_type]);
    raw.body = std::move(message.body());
    Responder respond = [self = shared_from_this(), keep_alive](Response res) {
      net::post(self->stream_.get_executor(),
                [self, keep_alive, res = std::move(res)]() mutable { self->write(std::move(res), keep_alive, false); });
    };
    try {
      core_.handler(std::move(raw), std::move(respond));
    } catch (const std::exception& e) {
      write(error_response(500, std::string("internal error: ") + e.what()), false, false);
    }
  }

  Response body_too_large() const {
    return error_response(
        413, "the request body is larger than the limit of " + std::to_string(limits().max_body_bytes) + " bytes");
  }

  // Answers a request refused before its body was read, then closes.
  void fail(Response res) {
    busy_ = true;
    write(std::move(res), false, true);
  }

  void write(Response res, bool keep_alive, bool linger) {
    if (closed_) return;
    auto reply = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version_);
    if (!res.content_type.empty()) reply->set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) reply->set(name, value);
    reply->body() = std::move(res.body);
    keep_alive = keep_alive && !core_.stopping;
    reply->keep_alive(keep_alive);
    reply->prepare_payload();
    stream_.expires_after(milliseconds(limits().write_timeout_ms));
    http::async_write(stream_, *reply,
                      [self = shared_from_this(), reply, keep_alive, linger](beast::error_code ec, size_t) {
                        if (ec) return self->close();
                        if (keep_alive) return self->read_request(false);
                        if (linger) return self->linger();
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->close();
                      });
  }

  // Half-closes, then reads and drops what the client still sends, for a bounded time.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }
  void drain() {
    stream_.async_read_some(net::buffer(drain_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    stream_.close();
  }

  HttpCore::Impl& core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::array<char, 8192> drain_{};
  unsigned version_ = 11;
  bool busy_ = false;  // a request is being answered
  bool closed_ = false;
};

void HttpCore::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        [this](beast::error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void HttpCore::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping || !acceptor.is_open()) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // Out of file descriptors (or similar): wait a moment instead of spinning.
    accept_retry.expires_after(milliseconds(50));
    accept_retry.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) accept();
    });
    return;
  }
  size_t open = 0;
  {
    std::lock_guard<std::mutex> lock(mutex);
    open = connections.size();
  }
  beast::error_code ignored;
  if (open >= limits.max_connections) {
    socket.non_blocking(true, ignored);
    socket.write_some(net::buffer(busy), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  } else {
    // Headers and body leave in separate writes: without NODELAY the body waits for the client's
    // delayed ACK.
    socket.set_option(tcp::no_delay(true), ignored);
    auto connection = std::make_shared<Connection>(*this, std::move(socket));
    {
      std::lock_guard<std::mutex> lock(mutex);
      connections.emplace(connection.get(), connection);
    }
    connection->start();
  }
  accept();
}

HttpCore::HttpCore(HttpLimits limits, int io_threads, HeaderCheck check, RequestHandler handler)
    : impl_(std::make_shared<Impl>()) {
  impl_->limits = limits;
  impl_->io_threads = std::max(1, io_threads);
  impl_->check = std::move(check);
  impl_->handler = std::move(handler);
}

HttpCore::~HttpCore() { stop(); }

int HttpCore::listen(const std::string& host, int port) {
  Impl& s = *impl_;
  const std::string where = host + ":" + std::to_string(port);
  try {
    std::string name = host;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    net::ip::address address;
    beast::error_code ec;
    address = net::ip::make_address(name, ec);
    if (ec) {
      tcp::resolver resolver(s.ioc);
      const auto results = resolver.resolve(name, std::to_string(port), tcp::resolver::numeric_service);
      if (results.empty()) throw Error("cannot listen on " + where + ": the name has no address");
      address = results.begin()->endpoint().address();
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    s.acceptor.open(endpoint.protocol());
    // SO_REUSEADDR (not SO_REUSEPORT): a quick restart works, a second server on the port fails.
    s.acceptor.set_option(net::socket_base::reuse_address(true));
    s.acceptor.bind(endpoint);
    s.acceptor.listen(s.limits.listen_backlog);
    return s.acceptor.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    throw Error("cannot listen on " + where + ": " + e.code().message() +
                    " (address in use, or not an address of this machine)",
                ErrorKind::kIo);
  }
}

void HttpCore::run() {
  Impl& s = *impl_;
  s.work.emplace(s.ioc.get_executor());
  net::post(s.acceptor.get_executor(), [&s] { s.accept(); });
  for (int i = 0; i < s.io_threads; ++i)
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "clip serve: unexpected error on an I/O thread: %s\n", e.what());
        }
      }
    });
}

void HttpCore::stop() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.stop_mutex);
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  if (s.threads.empty()) {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    return;
  }
  net::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    s.accept_retry.cancel();
  });
  // Idle and half-read connections close now; those answering a request close after it.
  for (auto& c : s.snapshot()) c->shut(false);
  const auto grace_end = std::chrono::steady_clock::now() + milliseconds(s.limits.shutdown_grace_ms);
  if (!s.wait_closed(grace_end)) {
    for (auto& c : s.snapshot()) c->shut(true);
    s.wait_closed(std::chrono::steady_clock::now() + milliseconds(500));
  }
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

size_t HttpCore::open_connections() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->connections.size();
}

}  // namespace clip::serve
