// `clip serve`: the HTTP service and web page (src/serve). SIGINT/SIGTERM stop it within the
// shutdown grace time, SIGHUP reloads a newer index generation: a handler records the signal and
// the main thread polls for it. (Blocking the signals and waiting
// with sigtimedwait is not enough: threads that libraries start before main — OpenBLAS's pool —
// do not have them blocked, and a SIGTERM delivered there killed the process.)
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "clip/error.h"
#include "clip/model.h"
#include "serve/access.h"
#include "serve/server.h"
#include "util/file_io.h"

namespace clip::cli {
namespace {

// A signal handler can only reach a global; it only stores the signal number.
std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_reload_signal{false};
extern "C" void record_signal(int sig) {
  if (sig == SIGHUP) g_reload_signal.store(true);
  else g_stop_signal.store(sig);
}

struct ServeCliOptions {
  serve::ServerOptions server;
  int inference_threads = 0;
  size_t max_body_mib = 32;
  uint64_t max_memory_mib = 0;
  double image_url_timeout = 10;          // seconds
  double image_url_connect_timeout = 5;   // seconds
  std::string api_key_file;
  std::string pretrained;  // --pretrained, with a --model name
  bool offline = false;    // --offline
};

// The key of --api-key-file: its first line, which must not be empty. Never printed.
std::string read_api_key(const std::string& path) {
  std::string text = util::read_file(path);
  text = text.substr(0, text.find_first_of("\r\n"));
  if (text.empty()) throw Error("--api-key-file " + path + ": the first line is empty; expected the key");
  return text;
}

void run_serve(ServeCliOptions o) {
  o.server.max_body_bytes = o.max_body_mib << 20;
  o.server.max_memory_bytes = o.max_memory_mib << 20;
  o.server.image_url_timeout_ms = static_cast<int>(o.image_url_timeout * 1000);
  o.server.image_url_connect_timeout_ms = static_cast<int>(o.image_url_connect_timeout * 1000);
  if (!o.api_key_file.empty()) o.server.api_key = read_api_key(o.api_key_file);
  if (!serve::is_loopback_host(o.server.host) && o.server.api_key.empty())
    std::fprintf(stderr,
                 "clip serve: warning: listening on %s, reachable from other machines, without an API key: anyone who "
                 "can connect can search and read the indexed images (give --api-key-file)\n",
                 o.server.host.c_str());
  struct sigaction action {};
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // other threads' system calls resume after the handler
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  keep_freed_memory_for_reuse();
  set_threads(o.inference_threads);
  // Names become files (cache, or a download) before listening; requests keep using the name.
  for (size_t i = 0; i < o.server.models.size(); ++i) {
    std::string& entry = o.server.models[i];
    if (std::filesystem::exists(entry)) continue;
    const size_t eq = entry.find('=');
    const std::string name = eq == std::string::npos ? entry : entry.substr(0, eq);
    const std::string model = eq == std::string::npos ? entry : entry.substr(eq + 1);
    if (std::filesystem::exists(model) && eq != std::string::npos) continue;
    const hub::ResolvedModel files = resolve_model_files(model, o.pretrained, o.offline);
    entry = name + "=" + files.weights;
    if (i == 0 && o.server.config_path.empty()) o.server.config_path = files.config;
  }

  serve::Server server(o.server);
  const int port = server.start();
  std::fprintf(stderr, "clip serve: listening on http://%s:%d/ (loading the model)\n", o.server.host.c_str(), port);
  bool reported = false;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int sig = g_stop_signal.load();
    if (sig == SIGINT || sig == SIGTERM) {
      std::fprintf(stderr, "clip serve: %s received, finishing requests in flight\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (g_reload_signal.exchange(false)) server.reload_index();
    const serve::Server::State state = server.state();
    if (state == serve::Server::State::kFailed) {
      server.stop();
      server.wait();
      throw Error(server.load_error(), server.load_error_kind());
    }
    if (state == serve::Server::State::kReady && !reported) {
      std::fprintf(stderr, "clip serve: ready\n");
      reported = true;
    }
  }
  server.stop();
  server.wait();
  std::fprintf(stderr, "clip serve: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeCliOptions>();
  serve::ServerOptions& s = o->server;
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "HTTP service: /embed, /classify, /search, /images, a web page at /; OpenAI's /v1/embeddings; immich's /predict");
  cmd->add_option("--model", s.models,
                  "A model name or checkpoint (docs/models.md), as MODEL or NAME=MODEL (the name requests use; "
                  "default: the file stem of a path, the name as given otherwise); repeat to serve several, the first "
                  "is the default (with --index: the index's model)");
  add_model_name_options(cmd, o->pretrained, o->offline);
  cmd->add_option("--max-models", s.max_models,
                  "Models loaded at once; the least recently used is unloaded (0: no limit)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  cmd->add_option("--max-memory-mib", o->max_memory_mib,
                  "MiB of weights of the loaded models; the least recently used is unloaded (0: no limit)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 30));
  cmd->add_option("--config", s.config_path, "Architecture as JSON (for the first --model)")->check(CLI::ExistingFile);
  cmd->add_option("--precision", s.precision, "fp32, bf16 or int8 (CPU)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  cmd->add_option("--index", s.index_dir, "An index folder (from `clip index build`) to search");
  cmd->add_flag("--mmap", s.index_mmap,
                "Memory-map the index's IVF lists instead of reading them (indexes larger than memory)");
  cmd->add_option("--rerank", s.index_rerank,
                  "Re-score the top K candidates by exact cosine (-1: the index's setting, 0: off)")
      ->check(CLI::Range(-1, 1 << 16));
  cmd->add_option("--host", s.host, "Address to listen on");
  cmd->add_option("--port", s.port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", s.threads, "Endpoint threads (model requests in progress at once)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--batch-window-ms", s.batch_window_ms,
                  "Concurrent /v1/embeddings and /predict requests share one forward pass: 0 gathers those "
                  "that queue while a pass computes, W > 0 also waits up to W ms for company when idle, -1 turns "
                  "gathering off")
      ->check(CLI::Range(-1, 1000));
  cmd->add_option("--io-threads", s.io_threads, "Threads serving the connections")->check(CLI::Range(1, 64));
  cmd->add_option("--allowed-hosts", s.allowed_hosts,
                  "Host header values accepted besides the bound address (name or name:port; * for any)")
      ->delimiter(',');
  auto* key = cmd->add_option("--api-key", s.api_key,
                              "Require \"Authorization: Bearer KEY\" (visible in ps: prefer --api-key-file)");
  cmd->add_option("--api-key-file", o->api_key_file, "Require the key on the first line of this file")
      ->check(CLI::ExistingFile)
      ->excludes(key);
  cmd->add_option("--reload-interval", s.reload_interval_seconds,
                  "Seconds between checks of the index for a new generation (0: only on SIGHUP)")
      ->check(CLI::Range(0, 86400));
  cmd->add_option("--max-connections", s.max_connections, "Open connections at once (503 beyond)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--inference-threads", o->inference_threads, "libtorch threads (0: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-body-mib", o->max_body_mib, "Largest request body in MiB (413 beyond)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-pixels", s.max_pixels, "Largest uploaded image in pixels (413 beyond)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  cmd->add_option("--max-duplicates-images", s.max_duplicates_images,
                  "GET /duplicates on an index of more images is refused (413): it compares every pair")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 36));
  cmd->add_option("--timeout", s.timeout_seconds, "Seconds to read a request's body or write a response")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--header-timeout", s.header_timeout_seconds, "Seconds to receive a request's header")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--idle-timeout", s.idle_timeout_seconds,
                  "Seconds a kept-alive connection may wait for its next request")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--shutdown-grace", s.shutdown_grace_seconds, "Seconds requests in flight may finish after SIGTERM")
      ->check(CLI::Range(0, 600));
  cmd->add_option("--allow-image-urls", s.image_url_hosts,
                  "Fetch http(s) image URLs in /v1/embeddings inputs from these hosts only (comma-separated names "
                  "or addresses; * for any name). Non-public addresses (loopback, private, link-local, ...) only "
                  "when the address itself is listed. Default: URLs are refused")
      ->delimiter(',');
  cmd->add_option("--image-url-timeout", o->image_url_timeout, "Seconds to fetch one image URL, redirects included")
      ->check(CLI::Range(0.001, 600.0));
  cmd->add_option("--image-url-connect-timeout", o->image_url_connect_timeout,
                  "Seconds to connect to an image URL's host")
      ->check(CLI::Range(0.001, 600.0));
  cmd->add_option("--image-url-fetches", s.max_image_url_fetches, "Image URLs fetched at once (503 beyond)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace clip::cli
