// The HTTP service of `clip serve` (cpp-httplib): embeddings, zero-shot classification, search of
// an index by text or example image, thumbnails of indexed images, and a web page. The port opens
// at once; the model (and index) load in the background, and requests that need them get 503
// until then. See docs/search.md for the API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace clip::serve {

struct ServerOptions {
  std::string model_path;   // empty: the model the index was built with (needs index_dir)
  std::string config_path;  // --config for model_path
  std::string precision = "fp32";
  std::string index_dir;    // optional: enables /search and /images
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port (see Server::port)
  int threads = 8;          // HTTP worker threads: requests served at once
  // Limits on what one request may ask for.
  size_t max_body_bytes = 32u << 20;  // larger bodies: 413
  int64_t max_pixels = 40000000;      // per uploaded image (width × height): 413 beyond
  int max_texts = 256;                // per /embed request
  int max_images = 16;                // per /embed request
  int max_labels = 1000;              // per /classify request
  int max_k = 1000;                   // per /search request
  int max_text_bytes = 4096;          // per text or query
  int timeout_seconds = 30;           // reading a request, writing a response
  int thumbnail_size = 256;           // longest side of /images/<id>
  std::string web_dir;                // the page's files (empty: the shipped assets/web)
};

class Server {
 public:
  enum class State { kLoading, kReady, kFailed };

  explicit Server(ServerOptions options);  // validates the options and reads the web page files
  ~Server();                               // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (throws clip::Error naming them when it cannot), then serves on a background
  // thread and loads the model on another. Returns the bound port.
  int start();
  // Stops accepting and finishes the requests in flight; idempotent, callable from any thread.
  void stop();
  // Blocks until the server has stopped.
  void wait();

  int port() const;
  State state() const;
  std::string load_error() const;  // why loading failed (State::kFailed)
  // Blocks until the model is loaded or has failed to load; returns the state.
  State wait_until_loaded() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip::serve
