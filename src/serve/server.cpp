#include "serve/server.h"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "clip/error.h"
#include "serve/handlers.h"
#include "serve/http_util.h"
#include "serve/loaded.h"
#include "serve/web_assets.h"

using nlohmann::json;

namespace clip::serve {

struct Server::Impl {
  ServerOptions options;
  std::map<std::string, WebFile> web;
  httplib::Server http;
  std::thread listener, loader;
  std::atomic<bool> listener_done{false};
  int port = 0;

  mutable std::mutex mutex;
  mutable std::condition_variable loaded_cv;
  State state = State::kLoading;
  std::string error;
  std::shared_ptr<const Loaded> loaded;

  // The loaded state, or HttpError 503 while loading (500 when loading failed).
  std::shared_ptr<const Loaded> ready() const {
    std::lock_guard<std::mutex> lock(mutex);
    if (state == State::kLoading) throw HttpError(503, "the model is still loading; retry in a moment");
    if (state == State::kFailed) throw HttpError(500, "the model failed to load: " + error);
    return loaded;
  }

  void load() {
    try {
      std::optional<index::ImageIndex> idx;
      if (!options.index_dir.empty()) idx = index::ImageIndex::open(options.index_dir);
      Model model = [&] {
        if (options.model_path.empty()) return index::load_index_model(idx->manifest());
        LoadOptions lo;
        lo.config_path = options.config_path;
        lo.precision = precision_from_name(options.precision);
        return Model::load(options.model_path, lo);
      }();
      if (idx && !options.model_path.empty())
        index::check_same_model(idx->manifest().model,
                                index::identify_model(model, options.model_path, model.precision()), options.index_dir);
      auto state_ptr = std::make_shared<const Loaded>(std::move(model), std::move(idx));
      std::lock_guard<std::mutex> lock(mutex);
      loaded = std::move(state_ptr);
      state = State::kReady;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      error = e.what();
      state = State::kFailed;
    }
    loaded_cv.notify_all();
  }

  // Wraps a model endpoint: the loaded state, JSON errors for every failure.
  httplib::Server::Handler endpoint(void (*handler)(const Loaded&, const ServerOptions&, const httplib::Request&,
                                                    httplib::Response&)) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        const std::shared_ptr<const Loaded> s = ready();
        handler(*s, options, req, res);
      } catch (const HttpError& e) {
        if (e.status() == 503) res.set_header("Retry-After", "1");
        send_error(res, e.status(), e.what());
      } catch (const Error& e) {
        // Library errors come from the request's content (e.g. a text the tokenizer refuses).
        send_error(res, 400, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, std::string("internal error: ") + e.what());
      }
    };
  }

  void routes() {
    for (const auto& [path, file] : web) {
      const WebFile* f = &file;
      http.Get(path, [f](const httplib::Request&, httplib::Response& res) { res.set_content(f->content, f->mime_type); });
    }
    http.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex);
      if (state == State::kLoading) {
        send_json(res, 503, {{"status", "loading"}});
      } else if (state == State::kFailed) {
        send_json(res, 500, {{"status", "failed"}, {"error", error}});
      } else {
        json idx = nullptr;
        if (loaded->index) idx = {{"images", loaded->index->size()}, {"dim", loaded->index->dim()}, {"path", options.index_dir}};
        send_json(res, 200, {{"status", "ready"}, {"embed_dim", loaded->model.config().embed_dim}, {"index", idx}});
      }
    });
    http.Post("/embed", endpoint(handle_embed));
    http.Post("/classify", endpoint(handle_classify));
    http.Get("/search", endpoint(handle_search_text));
    http.Post("/search", endpoint(handle_search_image));
    http.Get(R"(/images/(\d+))", endpoint(handle_image));
    // Every other error (unknown route 404, body too large 413, ...) gets a JSON body too.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = "HTTP status " + std::to_string(res.status);
      if (res.status == 400) message = "bad request";
      if (res.status == 404) message = "no such resource: " + req.method + " " + req.path;
      if (res.status == 405) message = "method not allowed: " + req.method + " " + req.path;
      if (res.status == 413) message = "the request body is larger than the limit";
      if (res.status == 414) message = "the request URI is too long";
      send_error(res, res.status, message);
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string message = "internal error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        message += std::string(": ") + e.what();
      } catch (...) {
      }
      send_error(res, 500, message);
    });
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  if (options.model_path.empty() && options.index_dir.empty())
    throw Error("give --model, or --index to use the model the index was built with");
  if (options.threads < 1 || options.threads > 1024)
    throw Error("--threads " + std::to_string(options.threads) + ": expected 1..1024");
  if (options.port < 0 || options.port > 65535) throw Error("--port " + std::to_string(options.port) + ": expected 0..65535");
  if (options.max_pixels <= 0 || options.max_body_bytes == 0 || options.timeout_seconds <= 0 || options.thumbnail_size <= 0)
    throw Error("server limits must be positive");
  if (!options.index_dir.empty()) index::read_manifest(options.index_dir);  // fail now, not in the background
  s.options = std::move(options);
  s.web = load_web_files(s.options.web_dir);
  const int threads = s.options.threads;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // httplib's default sets SO_REUSEPORT, which lets a second server bind a port already in use
  // (the two then share connections at random). SO_REUSEADDR alone still allows a quick restart.
  s.http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // httplib writes the headers and the body separately: with Nagle's algorithm the body waits for
  // the client's delayed ACK (40 ms a response on Linux).
  s.http.set_tcp_nodelay(true);
  // Each worker serves one connection at a time (httplib's model), so a kept-alive connection
  // holds its worker: a few requests per connection let waiting connections in (httplib's
  // default of 5), and idle ones are dropped after 2 s.
  s.http.set_keep_alive_max_count(5);
  s.http.set_keep_alive_timeout(2);
  s.http.set_payload_max_length(s.options.max_body_bytes);
  s.http.set_read_timeout(s.options.timeout_seconds, 0);
  s.http.set_write_timeout(s.options.timeout_seconds, 0);
  s.routes();
}

Server::~Server() {
  stop();
  wait();
}

int Server::start() {
  Impl& s = *impl_;
  if (s.listener.joinable()) throw Error("the server is already started");
  s.port = s.options.port == 0 ? s.http.bind_to_any_port(s.options.host)
                               : (s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1);
  if (s.port <= 0)
    throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (address in use, or not an address of this machine)");
  s.listener = std::thread([&s] {
    s.http.listen_after_bind();
    s.listener_done = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that a stop() right
  // after start() cannot be lost.
  while (!s.http.is_running() && !s.listener_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.loader = std::thread([&s] { s.load(); });
  return s.port;
}

void Server::stop() { impl_->http.stop(); }

void Server::wait() {
  if (impl_->listener.joinable()) impl_->listener.join();
  if (impl_->loader.joinable()) impl_->loader.join();
}

int Server::port() const { return impl_->port; }

Server::State Server::state() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->state;
}

std::string Server::load_error() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->error;
}

Server::State Server::wait_until_loaded() const {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->loaded_cv.wait(lock, [this] { return impl_->state != State::kLoading; });
  return impl_->state;
}

}  // namespace clip::serve
