// The server against hostile clients, over raw sockets from the test process (the server runs
// in-process): limits on what is received (chunked or not), header size and count, ambiguous
// framing, slow and idle connections, Host/Origin/API-key rules, the /classify work caps, files
// swapped under /images, a bounded shutdown, and the reload of a new index generation.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "clip/error.h"
#include "clip/index.h"
#include "serve/server.h"
#include "tiny_model.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using clip::test::image_file;
using clip::test::model_path;
using clip::test::tiny_model;

std::string make_temp_dir() {
  std::string templ = (fs::temp_directory_path() / "clip_serve_security_XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  return fs::canonical(templ).string();
}

// A TCP connection to 127.0.0.1:port.
class Socket {
 public:
  explicit Socket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot connect");
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // False once the peer is gone.
  bool send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  bool readable() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  // One response (header and Content-Length body), or what came before the peer closed or
  // `timeout_ms` passed.
  std::string read_response(int timeout_ms = 20000) {
    std::string data;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    for (;;) {
      const size_t head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        const size_t cl = data.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) length = std::stoul(data.substr(cl + 16));
        if (data.size() >= head_end + 4 + length) return data;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return data;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return data;
      data.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

int64_t proc_status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

clip::serve::ServerOptions model_only_options() {
  clip::serve::ServerOptions o;
  o.model_path = model_path();
  o.port = 0;
  o.threads = 2;
  o.max_body_bytes = 1 << 20;
  return o;
}

// A started server whose model is loaded.
struct Running {
  explicit Running(const clip::serve::ServerOptions& o) : server(o) {
    port = server.start();
    if (server.wait_until_loaded() != clip::serve::Server::State::kReady) throw std::runtime_error(server.load_error());
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port); }
  clip::serve::Server server;
  int port = 0;
};

std::string post_head(const std::string& host, const std::string& path, const std::string& extra) {
  return "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n";
}

}  // namespace

TEST(ServeLimits, AChunkedBodyOverTheLimitIs413AndIsNotKept) {
  Running s(model_only_options());
  Socket sock(s.port);
  const int64_t rss_before = proc_status_kib("VmRSS");
  ASSERT_TRUE(
      sock.send(post_head(s.host(), "/embed", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")));
  // Up to 64 MiB in 1 MiB chunks, stopping as soon as the server answers (or hangs up).
  const std::string chunk = "100000\r\n" + std::string(1 << 20, 'x') + "\r\n";
  for (int i = 0; i < 64 && !sock.readable(); ++i)
    if (!sock.send(chunk)) break;
  const std::string response = sock.read_response();
  EXPECT_EQ(status_of(response), 413) << response.substr(0, 200);
  EXPECT_NE(response.find("{\"error\":"), std::string::npos);
  // The server kept no more than about the limit (the test itself holds 1 MiB).
  EXPECT_LT(proc_status_kib("VmRSS") - rss_before, 24 * 1024);
}

TEST(ServeLimits, OversizedHeadersAndTooManyFieldsAre431) {
  Running s(model_only_options());
  {
    Socket sock(s.port);
    sock.send("GET /healthz HTTP/1.1\r\nHost: " + s.host() + "\r\nX-Big: " + std::string(64 << 10, 'a') + "\r\n\r\n");
    EXPECT_EQ(status_of(sock.read_response()), 431);
  }
  {
    Socket sock(s.port);
    std::string fields;
    for (int i = 0; i < 300; ++i) fields += "X-F" + std::to_string(i) + ": 1\r\n";
    sock.send("GET /healthz HTTP/1.1\r\nHost: " + s.host() + "\r\n" + fields + "\r\n");
    EXPECT_EQ(status_of(sock.read_response()), 431);
  }
  {  // A header that never ends: refused once it passes the limit, not read forever.
    Socket sock(s.port);
    sock.send("GET /healthz HTTP/1.1\r\nHost: " + s.host() + "\r\n");
    const std::string line = "X-More: " + std::string(1000, 'b') + "\r\n";
    for (int i = 0; i < 1000 && !sock.readable(); ++i)
      if (!sock.send(line)) break;
    EXPECT_EQ(status_of(sock.read_response()), 431);
  }
}

TEST(ServeLimits, AmbiguousFramingIs400) {
  Running s(model_only_options());
  const std::string body = R"({"texts": ["a"]})";
  const std::string n = std::to_string(body.size());
  const std::vector<std::string> framings = {
      "Content-Length: " + n + "\r\nContent-Length: " + n + "\r\n",
      "Content-Length: " + n + ", " + n + "\r\n",
      "Content-Length: " + n + "\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: " + n + "\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
  };
  for (const auto& framing : framings) {
    Socket sock(s.port);
    sock.send(post_head(s.host(), "/embed", "Content-Type: application/json\r\n" + framing) + body);
    EXPECT_EQ(status_of(sock.read_response()), 400) << framing;
  }
  // The same request framed once is answered.
  Socket sock(s.port);
  sock.send(post_head(s.host(), "/embed", "Content-Type: application/json\r\nContent-Length: " + n + "\r\n") + body);
  EXPECT_EQ(status_of(sock.read_response()), 200);
}

TEST(ServeLimits, SlowAndIdleConnectionsDoNotBlockOthers) {
  clip::serve::ServerOptions o = model_only_options();
  Running s(o);
  std::vector<std::unique_ptr<Socket>> idle, slow;
  for (int i = 0; i < 100; ++i) idle.push_back(std::make_unique<Socket>(s.port));
  for (int i = 0; i < 16; ++i) slow.push_back(std::make_unique<Socket>(s.port));
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: " + s.host() + "\r\nX-Slow: " + std::string(100, 's');
  std::atomic<bool> done{false};
  std::thread slowloris([&] {  // one byte a second on each slow connection
    for (size_t i = 0; i < header.size() && !done; ++i) {
      for (auto& sock : slow) sock->send(header.substr(i, 1));
      for (int t = 0; t < 10 && !done; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < 5; ++i) {
    // A correctness bound, not a benchmark: with a thread per connection these never answer.
    httplib::Client c("127.0.0.1", s.port);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(1, 0);
    auto r = c.Get("/healthz");
    ASSERT_TRUE(r) << "no answer within 1 s while 16 slow and 100 idle connections are open";
    EXPECT_EQ(r->status, 200);
  }
  done = true;
  slowloris.join();
}

TEST(ServeAccess, HostOriginAndContentTypeRules) {
  Running s(model_only_options());
  const std::string body = R"({"texts": ["a"]})";
  const auto post = [&](const std::string& host, const std::string& extra, const std::string& content) {
    Socket sock(s.port);
    sock.send(post_head(host, "/embed", extra + "Content-Length: " + std::to_string(content.size()) + "\r\n") +
              content);
    return sock.read_response();
  };
  // DNS rebinding: the page's own host name is not ours.
  std::string r = post("attacker.example:" + std::to_string(s.port), "Content-Type: application/json\r\n", body);
  EXPECT_EQ(status_of(r), 403) << r;
  EXPECT_EQ(status_of(post("localhost:" + std::to_string(s.port), "Content-Type: application/json\r\n", body)), 200);
  EXPECT_EQ(status_of(post("[::1]:" + std::to_string(s.port), "Content-Type: application/json\r\n", body)), 200);
  EXPECT_EQ(status_of(post("127.0.0.1:1", "Content-Type: application/json\r\n", body)), 403);  // another port
  {
    Socket sock(s.port);
    sock.send("GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    EXPECT_EQ(status_of(sock.read_response()), 403);
  }
  // A cross-origin "simple request" (a form another site's page submits) is refused...
  const std::string form =
      "--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\nxx\r\n--b--\r\n";
  r = post(s.host(), "Content-Type: multipart/form-data; boundary=b\r\nOrigin: http://evil.example\r\n", form);
  EXPECT_EQ(status_of(r), 403) << r;
  EXPECT_EQ(status_of(post(s.host(), "Content-Type: text/plain\r\nOrigin: null\r\n", body)), 403);
  EXPECT_EQ(status_of(post(s.host(), "Content-Type: text/plain\r\n", body)), 415);
  EXPECT_EQ(status_of(post(s.host(), "Content-Type: application/x-www-form-urlencoded\r\n", "texts=a")), 415);
  // ...while the page's own upload (its origin) and curl's (none) get through to the endpoint.
  r = post(s.host(), "Content-Type: multipart/form-data; boundary=b\r\nOrigin: http://" + s.host() + "\r\n", form);
  EXPECT_EQ(status_of(r), 400) << r;  // "xx" is no image
  EXPECT_NE(r.find("x.png"), std::string::npos);
}

TEST(ServeAccess, AnApiKeyIsRequiredButNotForHealthz) {
  clip::serve::ServerOptions o = model_only_options();
  o.api_key = "correct horse battery staple";
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  auto r = c.Post("/embed", R"({"texts": ["a"]})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(r->body.find("correct horse"), std::string::npos);
  for (const char* wrong : {"Bearer correct horse battery stapl", "Bearer correct horse battery staplex",
                            "Basic correct horse battery staple", "Bearer "}) {
    r = c.Post("/embed", {{"Authorization", wrong}}, R"({"texts": ["a"]})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << wrong;
  }
  EXPECT_EQ(c.Get("/search?q=a")->status, 401);
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  EXPECT_EQ(c.Get("/")->status, 200);  // the page itself holds no data
  r = c.Post("/embed", {{"Authorization", "Bearer correct horse battery staple"}}, R"({"texts": ["a"]})",
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST(ServeLifecycle, StopIsBoundedWithSlowClientsConnected) {
  clip::serve::ServerOptions o = model_only_options();
  o.shutdown_grace_seconds = 1;
  auto s = std::make_unique<Running>(o);
  Socket idle(s->port), half(s->port), body(s->port);
  half.send("GET /healthz HTTP/1.1\r\nHost: " + s->host() + "\r\nX-Slow: ");
  body.send(post_head(s->host(), "/embed", "Content-Type: application/json\r\nContent-Length: 100000\r\n") + "{\"te");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto stopped = std::async(std::launch::async, [&] { s->server.stop(); });
  // A few seconds at most (the grace time is 1 s); the old server waited for its read timeout.
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  stopped.get();
  s->server.wait();
  // The port is closed now.
  httplib::Client c("127.0.0.1", s->port);
  c.set_connection_timeout(1, 0);
  EXPECT_FALSE(c.Get("/healthz"));
}

// An index of a few copied images, for the tests that change files under it.
class ServeIndexFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    fs::create_directories(dir_ + "/images");
    for (const char* name : {"chelsea.png", "rocket.jpg"}) fs::copy_file(image_file(name), dir_ + "/images/" + name);
    clip::index::build_index(tiny_model(), identity(), clip::index::source_from_argument(dir_ + "/images", ""),
                             dir_ + "/index", build_options_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static clip::index::ModelIdentity identity() {
    return clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32);
  }
  clip::serve::ServerOptions options() const {
    clip::serve::ServerOptions o;
    o.index_dir = dir_ + "/index";
    o.port = 0;
    o.threads = 2;
    return o;
  }
  // The id of an indexed file, from /search results.
  static int64_t id_of(httplib::Client& c, const std::string& name) {
    auto r = c.Get("/search?q=a&k=10");
    if (!r || r->status != 200) ADD_FAILURE() << (r ? r->body : "no answer");
    const json body = json::parse(r->body);
    for (const auto& hit : body["results"])
      if (hit["name"] == name) return hit["id"].get<int64_t>();
    return -1;
  }
  std::string dir_;
  clip::index::BuildOptions build_options_;
};

TEST_F(ServeIndexFiles, FilesSwappedUnderImagesAreNotServedNorEchoed) {
  const std::string secret = dir_ + "/secret.txt";
  const std::string secret_text = "root:TOPSECRET-HASH:19000:0:99999:7:::\n";
  Running s(options());
  httplib::Client c("127.0.0.1", s.port);
  const int64_t id = id_of(c, "chelsea.png");
  ASSERT_GE(id, 0);
  const std::string target = dir_ + "/images/chelsea.png";
  const std::string url = "/images/" + std::to_string(id);
  ASSERT_EQ(c.Get(url)->status, 200);
  struct stat original {};
  ASSERT_EQ(::stat(target.c_str(), &original), 0);

  const auto expect_refused = [&](const std::string& what) {
    auto r = c.Get(url);
    ASSERT_TRUE(r) << what << ": no answer";
    EXPECT_TRUE(r->status == 404 || r->status == 403) << what << ": " << r->status;
    EXPECT_EQ(r->body.find("TOPSECRET"), std::string::npos) << what << ": " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << what;
  };
  // A symbolic link to another file.
  std::string padded = secret_text;
  padded.resize(static_cast<size_t>(original.st_size), 'x');
  write_text(secret, padded);
  fs::remove(target);
  fs::create_symlink(secret, target);
  expect_refused("a symbolic link");
  // A FIFO: opening it must not block the request.
  fs::remove(target);
  ASSERT_EQ(::mkfifo(target.c_str(), 0600), 0);
  expect_refused("a FIFO");
  // A link to a device.
  fs::remove(target);
  fs::create_symlink("/dev/zero", target);
  expect_refused("/dev/zero");
  // A regular file of the recorded size and mtime but other content: not decoded into the reply.
  fs::remove(target);
  write_text(target, padded);
  const struct timespec times[2] = {original.st_atim, original.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, target.c_str(), times, 0), 0);
  expect_refused("other content");
}

TEST_F(ServeIndexFiles, ANewGenerationIsServedAfterAReload) {
  clip::serve::ServerOptions o = options();
  o.reload_interval_seconds = 0;  // only when asked (SIGHUP)
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  EXPECT_EQ(json::parse(c.Get("/healthz")->body)["index"]["images"], 2);
  EXPECT_EQ(s.server.reload_index(), 1);  // nothing new
  fs::copy_file(image_file("coffee_q90_444.jpg"), dir_ + "/images/coffee.jpg");
  clip::index::update_index(tiny_model(), identity(), dir_ + "/index", build_options_);
  EXPECT_EQ(json::parse(c.Get("/healthz")->body)["index"]["images"], 2);  // not yet
  EXPECT_EQ(s.server.reload_index(), 2);
  const json health = json::parse(c.Get("/healthz")->body);
  EXPECT_EQ(health["index"]["images"], 3);
  EXPECT_EQ(health["index"]["generation"], 2);
  EXPECT_GE(id_of(c, "coffee.jpg"), 0);
}

TEST_F(ServeIndexFiles, TheManifestIsPolledForANewGeneration) {
  clip::serve::ServerOptions o = options();
  o.reload_interval_seconds = 1;
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  fs::copy_file(image_file("coffee_q90_444.jpg"), dir_ + "/images/coffee.jpg");
  clip::index::update_index(tiny_model(), identity(), dir_ + "/index", build_options_);
  json health;
  for (int i = 0; i < 300; ++i) {  // up to 30 s
    health = json::parse(c.Get("/healthz")->body);
    if (health["index"]["images"] == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(health["index"]["images"], 3);
  EXPECT_EQ(health["index"]["generation"], 2);
}
