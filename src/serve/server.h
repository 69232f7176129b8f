// The HTTP service of `clip serve`: embeddings, zero-shot classification, search of an index by
// text or example image, thumbnails of indexed images, and a web page; also OpenAI's embeddings
// API (/v1/*) and immich's machine-learning service (/ping, /predict), for several models. The port opens at once;
// the model (and index) load in the background, and requests that need them get 503 until then.
// Connections are served by an event-driven core (http_core.h: limits, timeouts, framing) and
// the endpoints run on a pool of their own threads; a newer index generation is picked up
// without a restart. See docs/search.md for the API and its limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clip/error.h"

namespace clip::serve {

struct ServerOptions {
  std::string model_path;  // empty: the model the index was built with (needs index_dir)
  // Or several: "NAME=PATH" or "PATH" (named by its file stem), the first is the default (the
  // one /embed, /classify and /search use, and the index's). Not with model_path.
  std::vector<std::string> models;
  size_t max_models = 0;          // models loaded at once (0: no limit); least recently used unloaded
  uint64_t max_memory_bytes = 0;  // weights of the loaded models (0: no limit)
  std::string config_path;        // --config for model_path (or the first of models)
  std::string precision = "fp32";
  std::string index_dir;  // optional: enables /search and /images
  bool index_mmap = false;  // map the index's IVF lists instead of reading them (index::OpenOptions)
  int index_rerank = -1;    // re-rank the top K by exact cosine (-1: the index's setting, 0: off)
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0: any free port (see Server::port)
  int threads = 16;                        // endpoint threads: model requests in progress at once
  // /v1/embeddings and /predict gather the inputs of concurrent requests into one forward pass
  // (InferenceBatcher): 0 gathers those that queue while a batch computes, > 0 also waits up to
  // this long for company when idle, -1 turns gathering off (each request computes alone).
  int batch_window_ms = 0;
  int io_threads = 2;                      // threads serving the connections (never run the model)
  std::vector<std::string> allowed_hosts;  // Host names accepted besides the bound address
  std::string api_key;              // non-empty: `Authorization: Bearer KEY` on all but /healthz, /ping and the page
  int reload_interval_seconds = 2;  // polling of the index manifest for a new generation (0: off)
  // Limits on what one request may ask for.
  size_t max_body_bytes = 32u << 20;   // larger bodies: 413
  int64_t max_pixels = 40000000;       // per uploaded image (width × height): 413 beyond
  int max_texts = 256;                 // per /embed request
  int max_images = 16;                 // per /embed request
  int max_labels = 1000;               // per /classify request
  int max_k = 1000;                    // per /search request
  // GET /duplicates compares every image with every other (N² · D): refused (413) above this many.
  int64_t max_duplicates_images = 200000;
  int max_text_bytes = 4096;           // per text or query
  int max_prompts = 2048;              // per /classify request: labels × templates
  size_t max_prompt_bytes = 1u << 20;  // per /classify request: the bytes of all filled templates
  int max_form_parts = 64;             // per multipart request
  // Connections.
  int max_connections = 512;            // open at once; beyond: 503 and close
  size_t max_header_bytes = 32u << 10;  // request line and header fields: 431 beyond
  int max_header_fields = 100;          // 431 beyond
  int header_timeout_seconds = 10;      // from a request's first byte to the end of its header
  int timeout_seconds = 30;             // reading a request's body, writing a response
  int idle_timeout_seconds = 5;         // a kept-alive connection waiting for its next request
  int shutdown_grace_seconds = 3;       // stop(): requests in flight may finish for this long
  int thumbnail_size = 256;             // longest side of /images/<id>
  // Image URLs in /v1/embeddings inputs (docs/serve.md): fetched only from these hosts (empty: never).
  std::vector<std::string> image_url_hosts;
  int image_url_connect_timeout_ms = 5000;
  int image_url_timeout_ms = 10000;  // one URL, its redirects included
  int max_image_url_fetches = 4;     // at once, in the whole server; more: 503
  std::string web_dir;                  // the page's files (empty: the shipped assets/web)
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
  // Stops accepting, closes idle connections, lets requests in flight finish for at most
  // shutdown_grace_seconds, then closes the rest; returns when the connections are closed and
  // the endpoint threads idle. Idempotent, callable from any thread but the server's own.
  void stop();
  // Blocks until the server has stopped.
  void wait();

  int port() const;
  State state() const;
  std::string load_error() const;     // why loading failed (State::kFailed)
  ErrorKind load_error_kind() const;  // and its kind (kInvalidInput for an error of no known kind)
  // Blocks until the model is loaded or has failed to load; returns the state.
  State wait_until_loaded() const;
  // Loads the index's newest generation if it is not the one served (SIGHUP; the server also
  // polls every reload_interval_seconds). Requests in flight keep the generation they started
  // with; a failed reload keeps the old one and says why on stderr. Returns the generation served.
  int64_t reload_index();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip::serve
