// Samples/s and peak RSS of one contrastive training step (forward, loss, backward, AdamW,
// temperature clamp) beside the peer's PyTorch step of the same model, measured in the same run
// (`torch_clip.py bench-train --config F --batch B --precision P`). The peer runs in a separate
// process; ours runs in a child process per case too, so that each peak RSS is the case's own.
//
//   build/bench/bench_train [--threads 2] [--runs 5] [--json out.json] [--peer PATH] [--only demo|b32]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "clip/model.h"
#include "clip/train.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "train/step.h"

namespace {

using json = nlohmann::json;

struct Case {
  std::string name;
  json config;
  int batch;
  std::string precision;
};

// Token rows as the peer makes them: start, n−1 random ids, end, zeros.
torch::Tensor peer_like_tokens(int64_t batch, int64_t length) {
  torch::Tensor t = torch::zeros({batch, length}, torch::kInt64);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = std::min<int64_t>(6 + i % 5, length - 1);
    t[i][0] = 49406;
    t[i].narrow(0, 1, n - 1).copy_(torch::randint(1, 49000, {n - 1}));
    t[i][n] = 49407;
  }
  return t;
}

// Our step, median over `runs` after a warm-up; printed as one JSON line (child process).
json measure_ours(const Case& c, int threads, int runs) {
  clip::set_threads(threads);
  clip::keep_freed_memory_for_reuse();
  const clip::ModelConfig config = clip::config_from_json_text(c.config.dump(), c.name);
  clip::Model model = clip::Model::random(config, 0);
  model.set_precision(clip::precision_from_name(c.precision));
  auto& m = *clip::model::module_of(model);
  m.train();
  clip::train::NamedParameters named;
  for (const auto& p : m.named_parameters(true)) named.emplace_back(p.key(), p.value());
  clip::train::OptimizerOptions oo;
  oo.lr = 1e-4;
  auto optimizer = clip::train::make_optimizer(named, oo);
  const torch::Tensor images = torch::randn({c.batch, 3, config.image_resolution, config.image_resolution});
  const torch::Tensor tokens = peer_like_tokens(c.batch, config.context_length);
  double optimizer_seconds = 0;  // the AdamW part of the last step
  auto step = [&] {
    clip::train::clear_gradients(*optimizer);
    clip::train::accumulate_gradients(m, model.precision(), model.device(), images, tokens, 1,
                                      [](const torch::Tensor& i, const torch::Tensor& t, const torch::Tensor& s) {
                                        return clip::train::contrastive_loss(i, t, s);
                                      });
    const auto o0 = std::chrono::steady_clock::now();
    optimizer->step();
    optimizer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - o0).count();
    at::autocast::clear_cache();
    torch::NoGradGuard g;
    m.logit_scale.clamp_(0, std::log(100.0));
  };
  step();                                                     // warm-up
  if (const char* trace = std::getenv("CLIP_BENCH_TRACE")) {  // a chrome://tracing file of one step
    torch::autograd::profiler::RecordProfile profile(std::string(trace) + "." + c.precision + ".json");
    step();
  }
  std::vector<double> times, optimizer_times;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    optimizer_times.push_back(optimizer_seconds);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return json{{"samples_per_s", c.batch / clip::bench::median(times)},
              {"step_ms", 1e3 * clip::bench::median(times)},
              {"optimizer_ms", 1e3 * clip::bench::median(optimizer_times)},
              {"peak_rss_mb", ru.ru_maxrss / 1024.0}};
}

json run_ours_in_child(const Case& c, int threads, int runs) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    try {
      out = measure_ours(c, threads, runs).dump();
    } catch (const std::exception& e) {
      out = json{{"error", e.what()}}.dump();
    }
    if (write(fds[1], out.data(), out.size()) < 0) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return json::parse(out);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, runs = 5;
  std::string json_path, only, peer = std::string(CLIP_SOURCE_DIR) + "/../shared/peer/torch_clip.py";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--threads") threads = std::stoi(value());
    else if (a == "--runs") runs = std::stoi(value());
    else if (a == "--json") json_path = value();
    else if (a == "--peer") peer = value();
    else if (a == "--only") only = value();
    else {
      std::fprintf(
          stderr,
          "usage: bench_train [--threads N] [--runs N] [--json FILE] [--peer torch_clip.py] [--only demo|b32]\n");
      return 2;
    }
  }
  // The demo model (with OpenAI's vocabulary size: the peer draws token ids up to 49,406) and a
  // ViT-B/32-shaped model at a small batch.
  const json demo{{"embed_dim", 128},       {"image_resolution", 28}, {"vision_layers", 4},  {"vision_width", 128},
                  {"vision_patch_size", 7}, {"context_length", 16},   {"vocab_size", 49408}, {"transformer_width", 128},
                  {"transformer_heads", 2}, {"transformer_layers", 2}};
  const json b32{{"embed_dim", 512},        {"image_resolution", 224},  {"vision_layers", 12},
                 {"vision_width", 768},     {"vision_patch_size", 32},  {"context_length", 77},
                 {"vocab_size", 49408},     {"transformer_width", 512}, {"transformer_heads", 8},
                 {"transformer_layers", 12}};
  std::vector<Case> cases;
  for (const char* p : {"fp32", "bf16"}) {
    if (only.empty() || only == "demo") cases.push_back({"demo (FMNIST-ViT shape)", demo, 256, p});
    if (only.empty() || only == "b32") cases.push_back({"ViT-B/32", b32, 16, p});
  }

  json all = json::array();
  std::printf("%-24s %5s %5s | %12s %12s %7s | %9s %9s | %s\n", "model", "batch", "prec", "ours s/s", "peer s/s",
              "ratio", "ours MB", "peer MB", "ours AdamW ms / step ms");
  for (const Case& c : cases) {
    const std::string cfg = "/tmp/bench_train_" + std::to_string(getpid()) + ".json";
    std::ofstream(cfg) << c.config.dump();
    const json ours = run_ours_in_child(c, threads, runs);
    json theirs;
    try {
      const std::string out = clip::bench::run_command(
          "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 /usr/bin/python3 " + peer + " bench-train --config " +
          cfg + " --batch " + std::to_string(c.batch) + " --precision " + c.precision + " --threads " +
          std::to_string(threads) + " --runs " + std::to_string(runs) + " 2>/dev/null");
      theirs = json::parse(out.substr(out.find('{')));
    } catch (const std::exception& e) {
      theirs = json{{"error", e.what()}};
    }
    std::remove(cfg.c_str());
    const double a = ours.value("samples_per_s", 0.0), b = theirs.value("samples_per_s", 0.0);
    std::printf("%-24s %5d %5s | %12.1f %12.1f %6.2fx | %9.0f %9.0f | %.1f / %.1f\n", c.name.c_str(), c.batch,
                c.precision.c_str(), a, b, b > 0 ? a / b : 0.0, ours.value("peak_rss_mb", 0.0),
                theirs.value("peak_rss_mb", 0.0), ours.value("optimizer_ms", 0.0), ours.value("step_ms", 0.0));
    std::fflush(stdout);
    all.push_back(json{{"model", c.name},
                       {"batch", c.batch},
                       {"precision", c.precision},
                       {"threads", threads},
                       {"ours", ours},
                       {"peer", theirs},
                       {"ratio", b > 0 ? a / b : 0.0}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << all.dump(2) << "\n";
  return 0;
}
