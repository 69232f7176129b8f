// Image URLs in /v1/embeddings inputs (`clip serve --allow-image-urls HOSTS`): fetched from the
// listed hosts only, never from a non-public address that is not itself listed, redirects checked
// hop by hop, bodies cut at the byte limit as they arrive, slow servers cut at the time limit, a
// bounded number of fetches at once. The image host is a small server on loopback in the test;
// listing 127.0.0.1 is what allows it.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "clip/embedder.h"
#include "clip/error.h"
#include "serve/base64.h"
#include "serve/ip_address.h"
#include "serve/server.h"
#include "tiny_model.h"
#include "util/file_io.h"

using nlohmann::json;

namespace {

using clip::test::image_file;
using clip::test::model_path;
using clip::test::tiny_model;

constexpr size_t kHugeBytes = 64u << 20;

// The image host: /cat.png, redirects, a huge body (chunked, or with its Content-Length), a slow
// answer, a 404.
class ImageHost {
 public:
  ImageHost() : png_(clip::util::read_file(image_file("chelsea.png"))) {
    server_.Get("/cat.png", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(png_, "image/png");
    });
    server_.Get("/missing.png", [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
    server_.Get("/to-same-host", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/cat.png", 302);
    });
    server_.Get("/to-localhost", [this](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("http://localhost:" + std::to_string(port_) + "/cat.png", 302);
    });
    server_.Get("/huge-chunked", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("image/png", [this](size_t, httplib::DataSink& sink) {
        const std::string chunk(64 << 10, '\x89');
        while (huge_sent_ < kHugeBytes && !stopping_) {
          if (!sink.write(chunk.data(), chunk.size())) return false;  // the client went away
          huge_sent_ += chunk.size();
        }
        sink.done();
        return true;
      });
    });
    server_.Get("/huge-declared", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(kHugeBytes, "image/png", [this](size_t offset, size_t, httplib::DataSink& sink) {
        const std::string chunk(64 << 10, '\x89');
        if (stopping_) return false;
        huge_sent_ = offset + chunk.size();
        return sink.write(chunk.data(), chunk.size());
      });
    });
    // Headers at once, then the image after 3 s.
    server_.Get("/slow.png", [this](const httplib::Request&, httplib::Response& res) {
      ++slow_requests_;
      res.set_chunked_content_provider("image/png", [this](size_t, httplib::DataSink& sink) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (std::chrono::steady_clock::now() < until && !stopping_)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        sink.write(png_.data(), png_.size());
        sink.done();
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop has started would be lost, and join() would wait forever.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ImageHost() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }
  const std::string& png() const { return png_; }

  std::atomic<size_t> huge_sent_{0};
  std::atomic<int> slow_requests_{0};

 private:
  const std::string png_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

struct UrlOptions {
  std::vector<std::string> hosts = {"127.0.0.1"};
  int timeout_ms = 10000;
  int fetches = 4;
  size_t max_body_bytes = 1 << 20;
};

class ImageUrls : public ::testing::Test {
 protected:
  void start(const UrlOptions& u) {
    clip::serve::ServerOptions o;
    o.models = {"tiny=" + model_path()};
    o.port = 0;
    o.threads = 4;
    o.max_body_bytes = u.max_body_bytes;
    o.image_url_hosts = u.hosts;
    o.image_url_timeout_ms = u.timeout_ms;
    o.max_image_url_fetches = u.fetches;
    server_ = std::make_unique<clip::serve::Server>(o);
    port_ = server_->start();
    ASSERT_EQ(server_->wait_until_loaded(), clip::serve::Server::State::kReady) << server_->load_error();
  }
  httplib::Result embeddings(const json& input) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c.Post("/v1/embeddings", json{{"model", "tiny"}, {"input", input}}.dump(), "application/json");
  }

  ImageHost host_;
  std::unique_ptr<clip::serve::Server> server_;
  int port_ = 0;
};

// OpenAI's error shape, with the status, param "input", the code, and words the message must hold.
void expect_url_error(const httplib::Result& r, int status, const std::string& code,
                      const std::vector<std::string>& words) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_object()) << r->body;
  EXPECT_EQ(j["error"]["param"], "input") << r->body;
  EXPECT_EQ(j["error"]["code"], code) << r->body;
  EXPECT_EQ(j["error"]["type"], status >= 500 ? "server_error" : "invalid_request_error") << r->body;
  const std::string message = j["error"].value("message", "");
  for (const std::string& w : words) EXPECT_NE(message.find(w), std::string::npos) << "no \"" << w << "\" in " << message;
}

std::vector<float> embedding(const json& reply, size_t i) {
  return reply["data"][i]["embedding"].get<std::vector<float>>();
}

// Equal up to float rounding (rows of one batch, or batches of other sizes).
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return torch::allclose(torch::tensor(a), torch::tensor(b), 1e-5, 1e-6);
}

}  // namespace

TEST_F(ImageUrls, AFetchedImageEmbedsAsItsDataUri) {
  start({});
  const std::string uri =
      "data:image/png;base64," + clip::serve::base64_encode(host_.png().data(), host_.png().size());
  auto r = embeddings({host_.url("/cat.png"), uri, host_.url("/to-same-host")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_EQ(j["data"].size(), 3u);
  EXPECT_TRUE(same(embedding(j, 0), embedding(j, 1)));  // the same bytes: the same embedding
  EXPECT_TRUE(same(embedding(j, 2), embedding(j, 1)));  // through a redirect to the same (listed) host
  // And what the library gives for the file.
  const torch::Tensor expected = clip::normalize_rows(clip::Embedder(tiny_model(), 1).embed_image_files({image_file("chelsea.png")}));
  EXPECT_TRUE(torch::allclose(torch::tensor(embedding(j, 0)).reshape({1, -1}), expected, 1e-4, 1e-5));

  auto single = embeddings(host_.url("/cat.png"));  // a lone string
  ASSERT_TRUE(single);
  ASSERT_EQ(single->status, 200) << single->body;
  EXPECT_TRUE(same(embedding(json::parse(single->body), 0), embedding(j, 1)));
}

TEST_F(ImageUrls, AHostNotListedIsRefused) {
  start({});  // 127.0.0.1 listed; "localhost" is the same machine, but not listed
  expect_url_error(embeddings({"a cat", host_.url("/cat.png", "localhost")}), 400, "image_url_not_allowed",
                   {"input[1]", "\"localhost\" is not in --allow-image-urls"});
}

TEST_F(ImageUrls, APrivateAddressIsRefusedUnlessTheAddressIsListed) {
  start({{"localhost"}});  // the name is listed, its address (loopback) is not
  expect_url_error(embeddings({host_.url("/cat.png", "localhost")}), 400, "image_url_not_allowed",
                   {"input[0]", "127.0.0.1 (loopback", "not a public address"});
}

TEST_F(ImageUrls, TheNameAndItsAddressListedAllowIt) {
  start({{"localhost", "127.0.0.1"}});
  auto r = embeddings(host_.url("/cat.png", "localhost"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ImageUrls, ARedirectToAHostNotListedIsRefused) {
  start({});
  expect_url_error(embeddings({host_.url("/to-localhost")}), 400, "image_url_not_allowed",
                   {"input[0]", "\"localhost\" is not in --allow-image-urls", "a redirect from"});
}

TEST_F(ImageUrls, AnOversizeBodyIsCutAsItArrives) {
  start({});  // the body limit: 1 MiB for all the images of a request
  // No Content-Length: only counting the bytes received can stop it.
  expect_url_error(embeddings({host_.url("/huge-chunked")}), 413, "image_too_large", {"input[0]", "larger than"});
  EXPECT_LT(host_.huge_sent_.load(), kHugeBytes / 4) << "the fetch read on past its limit";
  host_.huge_sent_ = 0;
  // A Content-Length over the limit: refused before the body.
  expect_url_error(embeddings({host_.url("/huge-declared")}), 413, "image_too_large", {"input[0]"});
  EXPECT_LT(host_.huge_sent_.load(), kHugeBytes / 4);
}

TEST_F(ImageUrls, ASlowServerTimesOut) {
  UrlOptions u;
  u.timeout_ms = 500;
  start(u);
  expect_url_error(embeddings({"a cat", host_.url("/slow.png")}), 400, "image_url_timeout", {"input[1]", "time limit"});
}

TEST_F(ImageUrls, FetchesBeyondTheLimitAreBusy) {
  UrlOptions u;
  u.fetches = 1;
  start(u);
  auto slow = std::async(std::launch::async, [&] { return embeddings({host_.url("/slow.png")}); });
  while (host_.slow_requests_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto busy = embeddings({host_.url("/cat.png")});  // the one fetch slot is taken by /slow.png
  expect_url_error(busy, 503, "image_url_fetches_busy", {"input[0]"});
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  auto first = slow.get();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  auto after = embeddings({host_.url("/cat.png")});  // the slot was given back
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
}

TEST_F(ImageUrls, UpstreamErrorsAndBadUrlsNameTheInput) {
  start({});
  expect_url_error(embeddings({"a", "b", host_.url("/missing.png")}), 400, "image_url_fetch_failed",
                   {"input[2]", "HTTP 404"});
  expect_url_error(embeddings({"http://127.0.0.1:1/cat.png"}), 400, "image_url_fetch_failed", {"input[0]"});
  expect_url_error(embeddings({"http://"}), 400, "invalid_image_url", {"input[0]"});
}

TEST_F(ImageUrls, AMalformedHostListIsRefusedAtStart) {
  clip::serve::ServerOptions o;
  o.models = {model_path()};
  o.image_url_hosts = {"exa mple.com"};
  EXPECT_THROW(clip::serve::Server{o}, clip::Error);
}

// The address classes, from their RFCs (6890, 4291, 6052, 3056, 4380, 4193, 3849, 5737, 6598).
TEST(IpAddress, NonPublicAddressesAreNamed) {
  using clip::serve::non_public_address_kind;
  using clip::serve::parse_ip_address;
  auto kind = [](const std::string& a) {
    const std::string bytes = parse_ip_address(a);
    EXPECT_FALSE(bytes.empty()) << a;
    return non_public_address_kind(bytes);
  };
  for (const char* a : {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "239.255.255.250",
                        "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1", "::", "::1", "[::1]", "fe80::1",
                        "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                        "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "2001::1",
                        "2001:db8::1", "100::1"})
    EXPECT_NE(kind(a), "") << a << " is not public";
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "169.253.1.1",
                        "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8"})
    EXPECT_EQ(kind(a), "") << a << " is public";
  EXPECT_NE(kind("::ffff:127.0.0.1").find("loopback"), std::string::npos);
  EXPECT_EQ(parse_ip_address("::ffff:127.0.0.1"), parse_ip_address("127.0.0.1"));  // mapped is the IPv4 address
  EXPECT_EQ(parse_ip_address("localhost"), "");
  EXPECT_EQ(parse_ip_address("1.2.3"), "");
}
