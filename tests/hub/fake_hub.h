// A fake Hugging Face Hub on loopback (cpp-httplib) for the hub and CLI tests: /{repo}/resolve/
// {rev}/{file} answering with X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, and a redirect
// to a blob server on another port (another origin) that honours Range. One repo, kFakeHubRepo.
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hub_test_util.h"

namespace clip::test {

inline const std::string kFakeHubRepo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K";

class FakeHub {
 public:
  FakeHub() {
    hub_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
             [this](const httplib::Request& req, httplib::Response& res) { resolve(req, res); });
    blobs_.Get(R"(/blobs/([0-9a-f]+))",
               [this](const httplib::Request& req, httplib::Response& res) { blob(req, res); });
    hub_port_ = hub_.bind_to_any_port("127.0.0.1");
    blob_port_ = blobs_.bind_to_any_port("127.0.0.1");
    hub_thread_ = std::thread([this] { hub_.listen_after_bind(); });
    blob_thread_ = std::thread([this] { blobs_.listen_after_bind(); });
  }
  ~FakeHub() {
    hub_.stop();
    blobs_.stop();
    hub_thread_.join();
    blob_thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(hub_port_); }
  // Files of the repo; files over 1000 bytes are "LFS": redirected to the blob server.
  void add(const std::string& file, const std::string& data) { files_[file] = data; }

  // Knobs.
  std::string required_token;          // non-empty: a gated repo
  std::atomic<int> fail_heads{0};      // answer this many HEADs with 503
  std::atomic<int64_t> cut_after{-1};  // blob bodies stop after this many bytes (once)
  std::atomic<bool> corrupt{false};    // flip a byte of every blob body
  std::atomic<int> blob_gets{0};
  std::atomic<bool> blob_saw_authorization{false};
  std::mutex mutex;
  std::vector<std::string> ranges;  // Range headers the blob server received

 private:
  void resolve(const httplib::Request& req, httplib::Response& res) {
    if (req.method == "HEAD" && fail_heads > 0) {
      --fail_heads;
      res.status = 503;
      return;
    }
    if (!required_token.empty() && req.get_header_value("Authorization") != "Bearer " + required_token) {
      res.status = 401;
      res.set_header("X-Error-Code", "GatedRepo");
      return;
    }
    const std::string repo = req.matches[1], file = req.matches[3];
    if (repo != kFakeHubRepo || !files_.count(file)) {
      res.status = 404;
      res.set_header("X-Error-Code", "EntryNotFound");
      return;
    }
    const std::string& data = files_[file];
    res.set_header("X-Repo-Commit", kCommit);
    if (data.size() > 1000) {
      const std::string sha = sha256_hex(data);
      res.status = 302;
      res.set_header("Location", "http://127.0.0.1:" + std::to_string(blob_port_) + "/blobs/" + sha);
      res.set_header("X-Linked-Etag", "\"" + sha + "\"");
      res.set_header("X-Linked-Size", std::to_string(data.size()));
      res.set_header("ETag", "\"not-the-blob\"");
      return;
    }
    res.set_header("ETag", "\"" + git_sha1_hex(data) + "\"");
    res.set_content(data, "application/octet-stream");
  }

  void blob(const httplib::Request& req, httplib::Response& res) {
    ++blob_gets;
    if (req.has_header("Authorization")) blob_saw_authorization = true;
    {
      std::lock_guard<std::mutex> lock(mutex);
      ranges.push_back(req.get_header_value("Range"));
    }
    std::string data;
    for (const auto& [name, content] : files_)
      if (sha256_hex(content) == req.matches[1].str()) data = content;
    if (data.empty()) {
      res.status = 404;
      return;
    }
    if (corrupt) data[data.size() / 2] ^= 1;
    const int64_t cut = cut_after.exchange(-1);
    // httplib applies the request's Range to what the provider serves (offset, length).
    res.set_content_provider(data.size(), "application/octet-stream",
                             [data, cut](size_t offset, size_t length, httplib::DataSink& sink) {
                               size_t end = offset + length;
                               if (cut >= 0 && static_cast<size_t>(cut) < end) end = std::max<size_t>(offset, cut);
                               if (end > offset) sink.write(data.data() + offset, end - offset);
                               return cut < 0 || static_cast<size_t>(cut) >= offset + length;  // false: cut off
                             });
  }

  httplib::Server hub_, blobs_;
  int hub_port_ = 0, blob_port_ = 0;
  std::thread hub_thread_, blob_thread_;
  std::map<std::string, std::string> files_;
};

}  // namespace clip::test
