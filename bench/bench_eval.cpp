// Evaluation throughput: feature extraction end to end (decode + preprocess + model, double
// buffered) against the model alone on the same batch size, and the linear probe's fit time.
//
//   bench_eval [--model tiny|ViT-B-32] [--images N] [--batch B] [--threads T]
//              [--probe-rows N] [--probe-dim D] [--json out.json]
//
// Images: the fixture images (../shared/fixtures/images when present, else tests/data), cycled
// to N. Figures on a shared machine are noisy: run it alone.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/eval.h"
#include "util/file_io.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The given files, cycled to `n` examples.
class CyclingFiles : public clip::data::Dataset {
 public:
  CyclingFiles(std::vector<std::string> files, size_t n) : files_(std::move(files)), n_(n) {}
  size_t size() const override { return n_; }
  std::string description() const override { return "fixture images cycled to " + std::to_string(n_); }
  clip::data::Example at(size_t i) const override {
    clip::data::Example e;
    e.image_path = files_[i % files_.size()];
    e.source = e.image_path;
    e.label = 0;
    return e;
  }

 private:
  std::vector<std::string> files_;
  size_t n_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "tiny", json_out;
  size_t images = 512;
  int batch = 32, threads = 0;
  int64_t probe_rows = 60000, probe_dim = 512;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--model") model_name = next();
    else if (a == "--images") images = std::stoul(next());
    else if (a == "--batch") batch = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--probe-rows") probe_rows = std::stoll(next());
    else if (a == "--probe-dim") probe_dim = std::stoll(next());
    else if (a == "--json") json_out = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_eval [--model tiny|ViT-B-32] [--images N] [--batch B] [--threads T] "
                   "[--probe-rows N] [--probe-dim D] [--json out.json]\n");
      return 2;
    }
  }
  clip::keep_freed_memory_for_reuse();
  clip::set_threads(threads);
  const std::string local = std::string(CLIP_SOURCE_DIR) + "/tests/data/fixtures";
  const std::string shared = std::string(CLIP_SOURCE_DIR) + "/../shared/fixtures/images";
  const clip::Model model = model_name == "tiny" ? clip::Model::load(local + "/models/tiny-vit-f16.safetensors",
                                                                     {local + "/models/tiny-vit-f16.config.json", {}})
                                                 : clip::Model::random(clip::named_config(model_name), 0);
  std::vector<std::string> files;
  const std::string dir = std::filesystem::exists(shared) ? shared : local + "/images";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string p = e.path().string();
    const std::string name = e.path().filename().string();
    if ((p.size() > 4 && (p.substr(p.size() - 4) == ".png" || p.substr(p.size() - 4) == ".jpg")) &&
        name != "empty.png" && name != "chelsea_truncated.jpg")
      files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  const CyclingFiles ds(files, images);
  const int r = model.config().image_resolution;
  std::printf("model %s (resolution %d), %zu images cycled from %zu files in %s, batch %d, %d threads\n",
              model_name.c_str(), r, images, files.size(), dir.c_str(), batch,
              threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));

  clip::eval::ExtractOptions o;
  o.batch_size = batch;
  o.threads = threads;
  o.progress = false;
  // The model alone runs on one batch of the same images, preprocessed beforehand.
  torch::Tensor input = torch::empty({batch, 3, r, r});
  {
    clip::image::PreprocessOptions po;
    po.size = r;
    for (int b = 0; b < batch; ++b) {
      const auto p = clip::image::preprocess_file(files[static_cast<size_t>(b) % files.size()], po);
      std::memcpy(input[b].data_ptr<float>(), p.input.data(), p.input.size() * sizeof(float));
    }
  }
  const size_t batches = (images + static_cast<size_t>(batch) - 1) / static_cast<size_t>(batch);
  // The machine is shared: each figure is the best of `rounds` runs, alternating the two.
  const int rounds = 2;
  double e2e_rate = 0, model_rate = 0;
  clip::eval::extract_image_features(model, CyclingFiles(files, static_cast<size_t>(batch)), o);  // warm-up
  for (int round = 0; round < rounds; ++round) {
    auto t = Clock::now();
    for (size_t b = 0; b < batches; ++b) model.encode_image(input);
    model_rate = std::max(model_rate, static_cast<double>(batches * static_cast<size_t>(batch)) / seconds_since(t));
    t = Clock::now();
    const auto f = clip::eval::extract_image_features(model, ds, o);
    e2e_rate = std::max(e2e_rate, static_cast<double>(f.features.size(0)) / seconds_since(t));
  }
  std::printf("  feature extraction end to end  %9.1f images/s\n  model alone                    %9.1f images/s\n",
              e2e_rate, model_rate);

  // Linear probe on random-ish features: 10 class means + noise, unit rows.
  torch::manual_seed(0);
  const torch::Tensor means = torch::randn({10, probe_dim});
  auto make = [&](int64_t n) {
    const torch::Tensor y = torch::randint(0, 10, {n}, torch::kInt64);
    const torch::Tensor x = clip::normalize_rows(means.index_select(0, y) * 0.15 + torch::randn({n, probe_dim}));
    return std::make_pair(x, y);
  };
  const auto [tx, ty] = make(probe_rows);
  const auto [vx, vy] = make(10000);
  clip::eval::LinearProbeOptions lp;
  lp.lambdas = {1e-4};
  lp.refine = false;
  const auto t = Clock::now();
  const auto one = clip::eval::linear_probe(tx, ty, vx, vy, lp);
  const double one_s = seconds_since(t);
  std::printf("  linear probe %lld x %lld, one lambda (fit + refit)  %.1f s  (test accuracy %.4f)\n",
              static_cast<long long>(probe_rows), static_cast<long long>(probe_dim), one_s, one.test_accuracy);
  if (!json_out.empty()) {
    const nlohmann::json j = {{"model", model_name},
                              {"images", images},
                              {"batch", batch},
                              {"threads", threads},
                              {"extraction_images_per_s", e2e_rate},
                              {"model_alone_images_per_s", model_rate},
                              {"probe_rows", probe_rows},
                              {"probe_dim", probe_dim},
                              {"probe_one_lambda_seconds", one_s},
                              {"probe_test_accuracy", one.test_accuracy}};
    clip::util::write_file_atomic(json_out, j.dump(2) + "\n");
  }
  return 0;
}
