#include "serve/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>

#include "clip/error.h"
#include "serve/access.h"
#include "serve/handlers.h"
#include "serve/http_core.h"
#include "serve/http_util.h"
#include "serve/image_url_fetch.h"
#include "serve/immich_api.h"
#include "serve/loaded.h"
#include "serve/model_registry.h"
#include "serve/openai_api.h"
#include "serve/web_assets.h"
#include "util/strings.h"

using nlohmann::json;

namespace clip::serve {
namespace {

using Endpoint = void (*)(const Loaded&, const ServerOptions&, const Request&, Response&);

// The endpoint of a model route, or null. Sets req->path_id for /images/<id>.
Endpoint route(Request* req) {
  const std::string& m = req->method;
  const std::string& p = req->path;
  if (m == "POST" && p == "/embed") return handle_embed;
  if (m == "POST" && p == "/classify") return handle_classify;
  if (m == "GET" && p == "/search") return handle_search_text;
  if (m == "GET" && p == "/duplicates") return handle_duplicates;
  if (m == "POST" && p == "/search") return handle_search_image;
  constexpr std::string_view kImages = "/images/";
  if (m == "GET" && p.size() > kImages.size() && p.compare(0, kImages.size(), kImages) == 0 &&
      p.find_first_not_of("0123456789", kImages.size()) == std::string::npos) {
    req->path_id = p.substr(kImages.size());
    return handle_image;
  }
  return nullptr;
}

HttpLimits limits_of(const ServerOptions& o) {
  HttpLimits l;
  l.max_connections = static_cast<size_t>(o.max_connections);
  l.max_header_bytes = o.max_header_bytes;
  l.max_header_fields = static_cast<size_t>(o.max_header_fields);
  l.max_body_bytes = o.max_body_bytes;
  l.header_timeout_ms = o.header_timeout_seconds * 1000;
  l.body_timeout_ms = o.timeout_seconds * 1000;
  l.write_timeout_ms = o.timeout_seconds * 1000;
  l.idle_timeout_ms = o.idle_timeout_seconds * 1000;
  l.shutdown_grace_ms = o.shutdown_grace_seconds * 1000;
  return l;
}

// The --model specs in order (the legacy single model_path as one).
std::vector<ModelSpec> model_specs(const ServerOptions& o) {
  std::vector<ModelSpec> specs;
  if (!o.model_path.empty()) specs.push_back({parse_model_spec(o.model_path).name, o.model_path, ""});
  for (const std::string& m : o.models) specs.push_back(parse_model_spec(m));
  if (!specs.empty()) specs.front().config_path = o.config_path;
  return specs;
}

bool is_openai_path(std::string_view path) { return util::starts_with(path, "/v1/"); }

}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::map<std::string, WebFile> web;
  std::unique_ptr<ImageUrlFetcher> image_urls;  // null without --allow-image-urls
  AccessPolicy access;  // set in start(), before the first connection, once the port is known
  std::unique_ptr<HttpCore> core;
  // Declared after the core: joined in stop() and destroyed first, so no response is posted to
  // a destroyed core.
  std::unique_ptr<boost::asio::thread_pool> pool;
  std::thread loader, reloader;
  int port = 0;

  mutable std::mutex mutex;
  mutable std::condition_variable loaded_cv;
  State state = State::kLoading;
  int64_t started_at = 0;  // unix seconds: the "created" of /v1/models
  std::string error;
  ErrorKind error_kind = ErrorKind::kInvalidInput;
  std::shared_ptr<const Loaded> loaded;
  index::ModelIdentity identity;  // of the loaded model: a reloaded index must match it
  bool stopping = false;          // ends the reloader (guarded by mutex, signalled by loaded_cv)
  bool stopped = false;

  std::mutex reload_mutex;  // one reload at a time (SIGHUP and the poller)
  std::string last_reload_error;

  // The loaded state, or HttpError 503 while loading (500 when loading failed).
  std::shared_ptr<const Loaded> ready() const {
    std::lock_guard<std::mutex> lock(mutex);
    if (state == State::kLoading) throw HttpError(503, "the model is still loading; retry in a moment");
    if (state == State::kFailed) throw HttpError(500, "the model failed to load: " + error);
    return loaded;
  }

  void load() {
    try {
      std::shared_ptr<const index::ImageIndex> idx;
      if (!options.index_dir.empty())
        idx = std::make_shared<const index::ImageIndex>(
            index::ImageIndex::open(options.index_dir, {options.index_mmap, options.index_rerank}));
      std::vector<ModelSpec> specs = model_specs(options);
      const Precision precision = precision_from_name(options.precision);
      const std::chrono::microseconds window(static_cast<int64_t>(options.batch_window_ms) * 1000);
      auto loader = [precision, window](const ModelSpec& spec) {
        LoadOptions lo;
        lo.config_path = spec.config_path;
        lo.precision = precision;
        return std::make_shared<const LoadedModel>(Model::load(spec.path, lo), window);
      };
      ModelBudget budget{options.max_models, options.max_memory_bytes};
      index::ModelIdentity model_identity;
      std::shared_ptr<ModelRegistry> models;
      std::shared_ptr<const LoadedModel> pinned;  // the index's model
      if (idx && specs.empty()) {
        model_identity = idx->manifest().model;
        const ModelSpec spec{parse_model_spec(model_identity.path).name, model_identity.path, ""};
        models = std::make_shared<ModelRegistry>(std::vector<ModelSpec>{spec}, budget, loader);
        pinned = std::make_shared<const LoadedModel>(index::load_index_model(idx->manifest()), window);
      } else {
        models = std::make_shared<ModelRegistry>(specs, budget, loader);
        if (idx) {
          pinned = loader(specs.front());
          model_identity = index::identify_model(pinned->model, specs.front().path, pinned->model.precision());
          index::check_same_model(idx->manifest().model, model_identity, options.index_dir);
        } else {
          models->acquire(models->default_name());  // the default model loads now: "ready" means usable
        }
      }
      if (pinned) models->pin(models->default_name(), pinned);
      auto next = std::make_shared<Loaded>();
      next->loaded_model = std::move(pinned);
      next->models = std::move(models);
      if (idx) next->duplicates = std::make_shared<DuplicatesCache>();
      next->index = std::move(idx);
      std::lock_guard<std::mutex> lock(mutex);
      identity = std::move(model_identity);
      loaded = std::move(next);
      state = State::kReady;
    } catch (const std::exception& e) {
      const auto* clip_error = dynamic_cast<const Error*>(&e);
      std::lock_guard<std::mutex> lock(mutex);
      error = e.what();
      error_kind = clip_error ? clip_error->kind() : ErrorKind::kInvalidInput;
      state = State::kFailed;
    }
    loaded_cv.notify_all();
  }

  int64_t reload_index() {
    std::lock_guard<std::mutex> reload_lock(reload_mutex);
    std::shared_ptr<const Loaded> current;
    index::ModelIdentity model_identity;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (state != State::kReady || !loaded->index) return 0;
      current = loaded;
      model_identity = identity;
    }
    const int64_t serving = current->index->manifest().generation;
    try {
      if (index::read_manifest(options.index_dir).generation == serving) return serving;
      auto idx = std::make_shared<const index::ImageIndex>(
          index::ImageIndex::open(options.index_dir, {options.index_mmap, options.index_rerank}));
      index::check_same_model(idx->manifest().model, model_identity, options.index_dir);
      auto next = std::make_shared<Loaded>();
      next->loaded_model = current->loaded_model;
      next->models = current->models;
      next->index = idx;
      next->duplicates = std::make_shared<DuplicatesCache>();
      {
        std::lock_guard<std::mutex> lock(mutex);
        loaded = std::move(next);
      }
      last_reload_error.clear();
      std::fprintf(stderr, "clip serve: now serving generation %lld of %s (%lld images)\n",
                   static_cast<long long>(idx->manifest().generation), options.index_dir.c_str(),
                   static_cast<long long>(idx->size()));
      return idx->manifest().generation;
    } catch (const std::exception& e) {
      // Said once per distinct reason: the poller retries every few seconds.
      if (last_reload_error != e.what())
        std::fprintf(stderr, "clip serve: cannot reload %s, still serving generation %lld: %s\n",
                     options.index_dir.c_str(), static_cast<long long>(serving), e.what());
      last_reload_error = e.what();
      return serving;
    }
  }

  void poll_reloads() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      loaded_cv.wait_for(lock, std::chrono::seconds(options.reload_interval_seconds), [this] { return stopping; });
      if (stopping) return;
      lock.unlock();
      reload_index();
      lock.lock();
    }
  }

  Response healthz() const {
    Response res;
    std::lock_guard<std::mutex> lock(mutex);
    if (state == State::kLoading) {
      send_json(res, 503, {{"status", "loading"}});
    } else if (state == State::kFailed) {
      send_json(res, 500, {{"status", "failed"}, {"error", error}});
    } else {
      json idx = nullptr;
      if (loaded->index)
        idx = {{"images", loaded->index->size()},
               {"dim", loaded->index->dim()},
               {"generation", loaded->index->manifest().generation},
               {"path", options.index_dir}};
      const json models = loaded->models->describe();
      send_json(
          res, 200,
          {{"status", "ready"}, {"embed_dim", models[0].value("embed_dim", 0)}, {"index", idx}, {"models", models}});
    }
    return res;
  }

  // Runs on the endpoint pool: the form parts, the endpoint, a JSON error for every failure
  // (in OpenAI's shape on /v1/*).
  template <typename Run>
  Response run_endpoint(Request& req, Run run) const {
    Response res;
    const bool openai = is_openai_path(req.path);
    try {
      if (media_type(req.content_type) == "multipart/form-data") {
        MultipartLimits limits;
        limits.max_parts = static_cast<size_t>(options.max_form_parts);
        req.parts = parse_multipart(req.body, req.content_type, limits);
        req.multipart = true;
        req.body.clear();
      }
      run(req, res);
    } catch (const ApiError& e) {
      res = openai ? openai_error(e.status(), e.what(), e.param(), e.code()) : error_response(e.status(), e.what());
    } catch (const HttpError& e) {
      res = openai ? openai_error(e.status(), e.what()) : error_response(e.status(), e.what());
    } catch (const Error& e) {
      res = openai ? openai_error(status_for(e.kind()), e.what()) : error_response(status_for(e.kind()), e.what());
    } catch (const std::exception& e) {
      const std::string message = std::string("internal error: ") + e.what();
      res = openai ? openai_error(500, message) : error_response(500, message);
    }
    if (res.status == 503) res.set_header("Retry-After", "1");  // busy: clients retry
    return res;
  }

  // The endpoint of a route of the other APIs (OpenAI, immich), or null.
  using ApiEndpoint = std::function<void(const Loaded&, Request&, Response&)>;
  ApiEndpoint api_route(const Request& req) const {
    const std::string& m = req.method;
    const std::string& p = req.path;
    if (m == "POST" && p == "/v1/embeddings")
      return
          [this](const Loaded& s, Request& r, Response& res) {
            handle_openai_embeddings(*s.models, options, image_urls.get(), r, res);
          };
    if (m == "GET" && p == "/v1/models")
      return [this](const Loaded& s, Request&, Response& res) { handle_openai_models(*s.models, started_at, res); };
    if (m == "POST" && p == "/predict")
      return [this](const Loaded& s, Request& r, Response& res) { handle_immich_predict(*s.models, options, r, res); };
    return nullptr;
  }

  // On an I/O thread: cheap answers here, model endpoints posted to the pool.
  void handle(RawRequest raw, Responder respond) {
    Request req;
    req.method = std::move(raw.method);
    req.content_type = std::move(raw.content_type);
    req.body = std::move(raw.body);
    try {
      parse_target(raw.target, &req.path, &req.query);
    } catch (const HttpError& e) {
      return respond(error_response(e.status(), e.what()));
    }
    if (req.method == "GET") {
      if (const auto file = web.find(req.path); file != web.end()) {
        Response res;
        res.set_content(file->second.content, file->second.mime_type);
        return respond(std::move(res));
      }
      if (req.path == "/healthz") return respond(healthz());
      if (req.path == "/ping") return respond(immich_ping());
    }
    const bool openai = is_openai_path(req.path);
    ApiEndpoint api = api_route(req);
    const Endpoint endpoint = api ? nullptr : route(&req);
    if (!api && !endpoint) {
      const std::string message = "no such resource: " + req.method + " " + req.path;
      return respond(openai ? openai_error(404, message, "", "unknown_url") : error_response(404, message));
    }
    std::shared_ptr<const Loaded> snapshot;
    try {
      snapshot = ready();
    } catch (const HttpError& e) {
      Response res = openai ? openai_error(e.status(), e.what()) : error_response(e.status(), e.what());
      if (e.status() == 503) res.set_header("Retry-After", "1");
      return respond(std::move(res));
    }
    boost::asio::post(*pool, [this, endpoint, api = std::move(api), snapshot = std::move(snapshot),
                              req = std::move(req), respond = std::move(respond)]() mutable {
      respond(run_endpoint(req, [&](Request& r, Response& res) {
        if (api) return api(*snapshot, r, res);
        // Without an index the default model may have been unloaded: this request holds it.
        Loaded s = *snapshot;
        if (!s.loaded_model) s.loaded_model = s.models->acquire(s.models->default_name());
        endpoint(s, options, r, res);
      }));
    });
  }

  bool needs_key(std::string_view path) const {
    return path != "/healthz" && path != "/ping" && web.find(std::string(path)) == web.end();
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  if (options.model_path.empty() && options.models.empty() && options.index_dir.empty())
    throw Error("give --model, or --index to use the model the index was built with");
  if (!options.model_path.empty() && !options.models.empty())
    throw Error("give the models either as model_path or as models, not both", ErrorKind::kInternal);
  if (const auto specs = model_specs(options); !specs.empty())
    ModelRegistry(specs, {}, nullptr);  // names checked now (distinct, well-formed), not in the background
  if (options.threads < 1 || options.threads > 1024)
    throw Error("--threads " + std::to_string(options.threads) + ": expected 1..1024");
  if (options.io_threads < 1 || options.io_threads > 64)
    throw Error("--io-threads " + std::to_string(options.io_threads) + ": expected 1..64");
  if (options.port < 0 || options.port > 65535)
    throw Error("--port " + std::to_string(options.port) + ": expected 0..65535");
  if (options.max_pixels <= 0 || options.max_body_bytes == 0 || options.timeout_seconds <= 0 ||
      options.thumbnail_size <= 0 || options.max_connections <= 0 || options.max_header_bytes == 0 ||
      options.max_header_fields <= 0 || options.header_timeout_seconds <= 0 || options.idle_timeout_seconds <= 0 ||
      options.shutdown_grace_seconds < 0 || options.max_prompts <= 0 || options.max_prompt_bytes == 0 ||
      options.max_form_parts <= 0 || options.reload_interval_seconds < 0 ||
      options.image_url_connect_timeout_ms <= 0 || options.image_url_timeout_ms <= 0 ||
      options.max_image_url_fetches <= 0 || options.batch_window_ms < -1)
    throw Error("server limits must be positive");
  if (!options.index_dir.empty()) index::read_manifest(options.index_dir);  // fail now, not in the background
  s.options = std::move(options);
  s.web = load_web_files(s.options.web_dir);
  if (!s.options.image_url_hosts.empty()) {
    ImageUrlLimits limits;
    limits.hosts = s.options.image_url_hosts;
    limits.connect_timeout_ms = s.options.image_url_connect_timeout_ms;
    limits.total_timeout_ms = s.options.image_url_timeout_ms;
    limits.max_concurrent = s.options.max_image_url_fetches;
    s.image_urls = std::make_unique<ImageUrlFetcher>(limits);
  }
  s.core = std::make_unique<HttpCore>(
      limits_of(s.options), s.options.io_threads,
      [&s](const RequestHead& head) {
        std::optional<Response> refusal = s.access.check(head, s.needs_key(head.path));
        if (refusal && is_openai_path(head.path)) refusal = as_openai_error(std::move(*refusal));
        return refusal;
      },
      [&s](RawRequest raw, Responder respond) { s.handle(std::move(raw), std::move(respond)); });
}

Server::~Server() {
  stop();
  wait();
}

int Server::start() {
  Impl& s = *impl_;
  if (s.pool) throw Error("the server is already started");
  s.port = s.core->listen(s.options.host, s.options.port);
  s.access = AccessPolicy(s.options.host, s.port, s.options.allowed_hosts, s.options.api_key);
  s.started_at =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  s.pool = std::make_unique<boost::asio::thread_pool>(static_cast<size_t>(s.options.threads));
  s.core->run();
  s.loader = std::thread([&s] { s.load(); });
  if (!s.options.index_dir.empty() && s.options.reload_interval_seconds > 0)
    s.reloader = std::thread([&s] { s.poll_reloads(); });
  return s.port;
}

void Server::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.stopping = true;
  }
  s.loaded_cv.notify_all();
  s.core->stop();
  if (s.pool) s.pool->join();  // endpoints in flight finish; their responses go nowhere
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stopped = true;
  s.loaded_cv.notify_all();
}

void Server::wait() {
  Impl& s = *impl_;
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.loaded_cv.wait(lock, [&s] { return s.stopped; });
  }
  if (s.reloader.joinable()) s.reloader.join();
  if (s.loader.joinable()) s.loader.join();
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

ErrorKind Server::load_error_kind() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->error_kind;
}

Server::State Server::wait_until_loaded() const {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->loaded_cv.wait(lock, [this] { return impl_->state != State::kLoading; });
  return impl_->state;
}

int64_t Server::reload_index() { return impl_->reload_index(); }

}  // namespace clip::serve
