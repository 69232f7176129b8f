// Checkpoint load time, and the peak memory of a process that loads a model and embeds one batch
// of images: what an int8-only load (clip/model.h LoadOptions) saves against float loads.
//
//   bench_load MODEL [--precision fp32|bf16|int8] [--runs 5] [--images 0] [--threads 2] [--json F]
//   bench_load MODEL --save-int8 OUT   (writes MODEL quantized, as `clip convert --dtype int8`)
//
// Loads MODEL --runs times, each model freed before the next, and prints the wall and CPU time of
// the loads, medians and minima (the file is read once before, so the page cache is warm). With
// --images N, then loads it once more and encodes N random images in one batch, and prints the
// process's peak RSS (getrusage): run one process per configuration with --runs 0, so that the
// peak is that of one load and one batch. The process keeps freed memory for reuse, as the `clip`
// command does (environment BENCH_LOAD_GLIBC_DEFAULTS=1: glibc's defaults instead). Figures:
// docs/models.md (int8) and docs/checkpoints.md.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "clip/model.h"

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_load MODEL [--precision fp32|bf16|int8] [--runs N] [--images N] [--threads N] "
                 "[--json F]\n");
    return 2;
  }
  const std::string path = argv[1];
  std::string precision = "fp32", json_path, save_int8;
  int runs = 5, images = 0, threads = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--precision") precision = v;
    else if (a == "--runs") runs = std::stoi(v);
    else if (a == "--images") images = std::stoi(v);
    else if (a == "--threads") threads = std::stoi(v);
    else if (a == "--json") json_path = v;
    else if (a == "--save-int8") save_int8 = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (!std::getenv("BENCH_LOAD_GLIBC_DEFAULTS")) clip::keep_freed_memory_for_reuse();
  clip::set_threads(threads);
  if (!save_int8.empty()) {
    clip::Model::load(path).save_safetensors(save_int8, torch::kInt8);
    return 0;
  }
  clip::LoadOptions options;
  options.precision = clip::precision_from_name(precision);
  {
    std::ifstream warm(path, std::ios::binary);  // the page cache, not the disk, is measured
    std::vector<char> buf(1 << 20);
    while (warm.read(buf.data(), static_cast<std::streamsize>(buf.size())) || warm.gcount() > 0) {
    }
  }

  using Clock = std::chrono::steady_clock;
  std::vector<double> wall, cpu;
  bool int8_only = false;
  uint64_t weight_bytes = 0;
  const auto timed_load = [&] {
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    clip::Model m = clip::Model::load(path, options);
    wall.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    cpu.push_back(cpu_seconds() - c0);
    int8_only = m.int8_only();
    weight_bytes = m.weight_bytes();
    return m;
  };
  for (int r = 0; r < runs; ++r) timed_load();  // each model freed before the next load
  nlohmann::json result = {{"model", path}, {"precision", precision}, {"threads", threads}};
  if (images > 0) {
    const clip::Model model = timed_load();
    const clip::bench::Rss loaded = clip::bench::read_rss();
    std::printf("after the load: RSS %.0f MB, peak so far %.0f MB\n", loaded.now_mb, loaded.peak_mb);
    result["rss_after_load_mb"] = loaded.now_mb;
    result["peak_rss_load_mb"] = loaded.peak_mb;
    const int r = model.config().image_resolution;
    torch::manual_seed(1);
    const torch::Tensor batch = torch::rand({images, 3, r, r});
    const auto t0 = Clock::now();
    const torch::Tensor features = model.encode_image(batch);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double peak_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
    std::printf("encoded %d images in %.2f s; peak RSS of the process: %.0f MB (RSS now %.0f MB)\n", images, s,
                peak_mb, clip::bench::read_rss().now_mb);
    result["images"] = images;
    result["peak_rss_mb"] = peak_mb;
  }
  if (wall.empty()) return 0;
  std::printf("%s --precision %s (%s): %zu loads, wall median %.3f s (min %.3f), CPU median %.3f s (min %.3f)\n",
              path.c_str(), precision.c_str(), int8_only ? "int8-only" : "float weights", wall.size(),
              clip::bench::median(wall), *std::min_element(wall.begin(), wall.end()), clip::bench::median(cpu),
              *std::min_element(cpu.begin(), cpu.end()));
  std::printf("weights in memory: %.1f MB\n", static_cast<double>(weight_bytes) / 1e6);
  result["int8_only"] = int8_only;
  result["load_wall_s"] = wall;
  result["load_cpu_s"] = cpu;
  result["weight_bytes"] = weight_bytes;
  if (!json_path.empty()) std::ofstream(json_path) << result.dump(2) << "\n";
  return 0;
}
