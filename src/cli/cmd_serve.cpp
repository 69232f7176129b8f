// `clip serve`: the HTTP service and web page (src/serve). SIGINT/SIGTERM stop it cleanly: a
// handler records the signal and the main thread polls for it. (Blocking the signals and waiting
// with sigtimedwait is not enough: threads that libraries start before main — OpenBLAS's pool —
// do not have them blocked, and a SIGTERM delivered there killed the process.)
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "clip/error.h"
#include "clip/model.h"
#include "serve/server.h"

namespace clip::cli {
namespace {

// A signal handler can only reach a global; it only stores the signal number.
std::atomic<int> g_stop_signal{0};
extern "C" void record_stop_signal(int sig) { g_stop_signal.store(sig); }

struct ServeCliOptions {
  serve::ServerOptions server;
  int inference_threads = 0;
  size_t max_body_mib = 32;
};

void run_serve(ServeCliOptions o) {
  o.server.max_body_bytes = o.max_body_mib << 20;
  struct sigaction action {};
  action.sa_handler = record_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // other threads' system calls resume after the handler
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  keep_freed_memory_for_reuse();
  set_threads(o.inference_threads);

  serve::Server server(o.server);
  const int port = server.start();
  std::fprintf(stderr, "clip serve: listening on http://%s:%d/ (loading the model)\n", o.server.host.c_str(), port);
  bool reported = false;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int sig = g_stop_signal.load();
    if (sig == SIGINT || sig == SIGTERM) {
      std::fprintf(stderr, "clip serve: %s received, finishing requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    const serve::Server::State state = server.state();
    if (state == serve::Server::State::kFailed) {
      server.stop();
      server.wait();
      throw Error(server.load_error());
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
  CLI::App* cmd = app.add_subcommand("serve", "HTTP service: /embed, /classify, /search, /images, a web page at /");
  cmd->add_option("--model", s.model_path, "Checkpoint (default with --index: the index's model)");
  cmd->add_option("--config", s.config_path, "Architecture as JSON (with --model)")->check(CLI::ExistingFile);
  cmd->add_option("--precision", s.precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_option("--index", s.index_dir, "An index folder (from `clip index build`) to search");
  cmd->add_option("--host", s.host, "Address to listen on");
  cmd->add_option("--port", s.port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", s.threads, "HTTP worker threads (requests served at once)")->check(CLI::Range(1, 1024));
  cmd->add_option("--inference-threads", o->inference_threads, "libtorch threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--max-body-mib", o->max_body_mib, "Largest request body in MiB (413 beyond)")->check(CLI::Range(1, 4096));
  cmd->add_option("--max-pixels", s.max_pixels, "Largest uploaded image in pixels (413 beyond)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  cmd->add_option("--timeout", s.timeout_seconds, "Seconds to read a request or write a response")->check(CLI::Range(1, 3600));
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace clip::cli
