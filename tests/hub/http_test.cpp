// hub::http_request's guards for fetches on a client's behalf (the server's image URLs): pinned
// addresses (the name is not looked up; no other address is connected to), the byte limit on
// what arrives, the total time limit, redirects reported and not followed; parse_http_url.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "clip/error.h"
#include "hub/http.h"

namespace clip::hub {
namespace {

class Loopback {
 public:
  Loopback() {
    server_.Get("/small", [](const httplib::Request&, httplib::Response& res) { res.set_content("hello", "text/plain"); });
    server_.Get("/chunked", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("application/octet-stream", [this](size_t, httplib::DataSink& sink) {
        const std::string chunk(16 << 10, 'x');
        while (sent_ < (64u << 20) && !stopping_) {
          if (!sink.write(chunk.data(), chunk.size())) return false;
          sent_ += chunk.size();
        }
        sink.done();
        return true;
      });
    });
    server_.Get("/stall", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/plain", [this](size_t, httplib::DataSink& sink) {
        for (int i = 0; i < 150 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        sink.write("late", 4);
        sink.done();
        return true;
      });
    });
    server_.Get("/moved", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/small", 302); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop has started would be lost, and join() would wait forever.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Loopback() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& host, const std::string& path) const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }
  std::atomic<size_t> sent_{0};

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

HttpResponse get(const std::string& url, std::vector<std::string> pinned, uint64_t max_bytes = 0,
                 long total_ms = 0, std::string* body = nullptr) {
  HttpRequest r;
  r.url = url;
  r.pinned_addresses = std::move(pinned);
  r.max_body_bytes = max_bytes;
  r.total_timeout_ms = total_ms;
  r.sink = [body](long, const char* data, size_t n) {
    if (body) body->append(data, n);
    return true;
  };
  return http_request(r);
}

}  // namespace

TEST(HttpRequest, APinnedNameIsNotLookedUp) {
  Loopback server;
  // "pinned.invalid" has no DNS answer (.invalid, RFC 6761): only the pinned address can reach the server.
  std::string body;
  const HttpResponse r = get(server.url("pinned.invalid", "/small"), {"127.0.0.1"}, 0, 0, &body);
  EXPECT_EQ(r.status, 200) << r.transport_error;
  EXPECT_EQ(body, "hello");
}

TEST(HttpRequest, NoOtherAddressThanThePinnedOnesIsConnectedTo) {
  Loopback server;
  // The pin wins over the address written in the URL: 127.0.0.1 pinned to 127.0.0.2, where nothing listens.
  EXPECT_EQ(get(server.url("127.0.0.1", "/small"), {"127.0.0.2"}).status, 0);
  EXPECT_EQ(get(server.url("127.0.0.1", "/small"), {"127.0.0.1"}).status, 200);
  // An IPv6 literal is not pinned through the resolver (libcurl would connect to ::1 itself): the
  // check of every socket refuses it.
  const HttpResponse r = get(server.url("[::1]", "/small"), {"127.0.0.1"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.address_refused);
}

TEST(HttpRequest, TheBodyIsCutAtTheLimitAsItArrives) {
  Loopback server;
  const HttpResponse r = get(server.url("127.0.0.1", "/chunked"), {"127.0.0.1"}, 1 << 20);
  EXPECT_TRUE(r.too_large);
  EXPECT_LT(server.sent_.load(), 16u << 20);  // abandoned, not read to its 64 MiB end
}

TEST(HttpRequest, TheTotalTimeLimitCutsAStalledBody) {
  Loopback server;
  const HttpResponse r = get(server.url("127.0.0.1", "/stall"), {"127.0.0.1"}, 0, 300);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.transport_error.empty());
}

TEST(HttpRequest, RedirectsAreReportedNotFollowed) {
  Loopback server;
  const HttpResponse r = get(server.url("127.0.0.1", "/moved"), {"127.0.0.1"});
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.redirect_url, server.url("127.0.0.1", "/small"));  // made absolute
}

TEST(ParseHttpUrl, ReadsTheHostAsLibcurlDoes) {
  const UrlParts p = parse_http_url("HTTP://Example.COM/a?b#c");
  EXPECT_EQ(p.scheme, "http");
  EXPECT_EQ(p.host, "example.com");
  EXPECT_EQ(p.port, 80);
  EXPECT_EQ(parse_http_url("https://[::1]:8443/x").host, "[::1]");
  EXPECT_EQ(parse_http_url("https://[::1]:8443/x").port, 8443);
  EXPECT_EQ(parse_http_url("https://a.example/").port, 443);
  EXPECT_THROW(parse_http_url("ftp://example.com/x"), Error);
  EXPECT_THROW(parse_http_url("file:///etc/passwd"), Error);
  EXPECT_THROW(parse_http_url("http://"), Error);
  EXPECT_THROW(parse_http_url("not a url"), Error);
}

}  // namespace clip::hub
