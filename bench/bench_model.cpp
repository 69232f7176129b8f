// Inference throughput of CLIP++ beside the PyTorch peer, in one run on the same machine.
//
//   bench_model [--models vit-b-32 rn50] [--precisions fp32 bf16 int8] [--threads N] [--runs 5]
//               [--image-batches 1 8 32] [--text-batches 1 32 256]
//               [--peer ../shared/peer/torch_clip.py] [--python /usr/bin/python3] [--no-peer] [--peer-tuned-only]
//               [--json out.json]
//   bench_model --save-model PATH [--models vit-b-32]
//   bench_model --cosine [--models vit-b-32 rn50] [--precisions bf16 int8] [--json out.json]
// (--cosine: each precision's features against fp32's, same weights and inputs; no timing.)
// (--save-model writes the first model's random weights, the ones measured here, as a safetensors
// file and exits: bench/serve_load.sh serves that file to compare the server with these figures.)
// (An empty batch list skips that tower. The peer always runs its own full set.)
//
// Random weights (CLIP's init, seeded), the peer's input construction: random images, and
// short prompts of 6-10 tokens padded to 77. Medians after a warm-up. The peer runs twice:
// as users get it, and tuned (glibc told to keep freed memory); ratios are against the tuned one.
// Also: load time of a ViT-B/32 safetensors file (warm cache), peak RSS (of the inference runs,
// the peer's work, then of the save and load apart), and the ViT image tower's GFLOP/s against the best fp32/bf16/int8
// matrix products measured in this run (int8: oneDNN's s8·s8 product with s32 accumulation, weights packed, as the
// int8 linears run it; its operations counted as FLOPs are).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "clip/model.h"
#include "io/safetensors.h"
#include "util/file_io.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

template <class F>
double median_seconds(F&& f, int runs) {
  f();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string config_name(const std::string& peer_name) { return peer_name == "rn50" ? "RN50" : "ViT-B/32"; }

// The peer's prompts: [sot, 5..9 random ids, eot, 0...].
torch::Tensor short_prompts(int64_t batch) {
  torch::Tensor ids = torch::zeros({batch, 77}, torch::kInt64);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = 6 + i % 5;
    ids[i][0] = 49406;
    ids[i].narrow(0, 1, n - 1).copy_(torch::randint(1, 49000, {n - 1}, torch::kInt64));
    ids[i][n] = 49407;
  }
  return ids;
}

// Multiply-adds x2 of a ViT image tower (patch embedding, blocks, projection).
double vit_image_flops(const clip::ModelConfig& c) {
  const double w = c.vision_width, g = c.vision_grid(), L = g * g + 1, p = c.vision_patch_size;
  const double mlp = w * c.vision_mlp_ratio;
  const double per_block = 4 * L * w * w + 2 * L * w * mlp + 2 * L * L * w;
  return 2 * (g * g * 3 * p * p * w + c.vision_layers * per_block + w * c.embed_dim);
}

// The same for a ModifiedResNet: the stem's three 3x3 convolutions, each bottleneck's 1x1, 3x3
// and 1x1 (and downsampling 1x1) convolutions at their resolutions, and the attention pool's
// projections (keys and values for every position, query and output for the pooled one).
double resnet_image_flops(const clip::ModelConfig& c) {
  const double w = c.vision_width;
  double side = c.image_resolution / 2.0, macs = 0;
  macs += side * side * 9 * (3 * w / 2 + (w / 2) * (w / 2) + (w / 2) * w);
  side /= 2;  // the stem's average pool
  double inplanes = w;
  for (int stage = 0; stage < 4; ++stage) {
    const double planes = w * (1 << stage);
    for (int block = 0; block < c.vision_resnet_layers[stage]; ++block) {
      const int stride = block == 0 && stage > 0 ? 2 : 1;
      const double out_side = side / stride;
      macs += side * side * (inplanes * planes + 9 * planes * planes) + out_side * out_side * planes * 4 * planes;
      if (stride > 1 || inplanes != 4 * planes) macs += out_side * out_side * inplanes * 4 * planes;
      inplanes = 4 * planes;
      side = out_side;
    }
  }
  const double e = inplanes, tokens = side * side + 1;
  macs += 2 * tokens * e * e + e * e + e * c.embed_dim;
  return 2 * macs;
}

double image_flops(const clip::ModelConfig& c) { return c.is_vit() ? vit_image_flops(c) : resnet_image_flops(c); }

double best_matmul_gflops(torch::ScalarType t, int runs) {
  const torch::Tensor a = torch::randn({2048, 2048}).to(t), b = torch::randn({2048, 2048}).to(t);
  const double s = median_seconds([&] { torch::mm(a, b); }, runs);
  return 2.0 * 2048 * 2048 * 2048 / s / 1e9;
}

// oneDNN's int8 product on 2048^3: s8 inputs, s8 weights in the layout it chose, f32 output.
double best_int8_matmul_gflops(int runs) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const int64_t n = 2048;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::memory::desc a_md({n, n}, dt::s8, tag::ab), b_any({n, n}, dt::s8, tag::any), c_md({n, n}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), engine);
  const torch::Tensor a = torch::randint(-127, 128, {n, n}, torch::kInt8), b = torch::randint(-127, 128, {n, n}, torch::kInt8);
  torch::Tensor c = torch::empty({n, n}), packed = torch::empty({static_cast<int64_t>(pd.weights_desc().get_size())}, torch::kUInt8);
  dnnl::stream stream(engine);
  dnnl::memory a_mem(a_md, engine, a.data_ptr()), b_plain(dnnl::memory::desc({n, n}, dt::s8, tag::ab), engine, b.data_ptr()),
      b_mem(pd.weights_desc(), engine, packed.data_ptr()), c_mem(c_md, engine, c.data_ptr());
  dnnl::reorder(b_plain, b_mem).execute(stream, b_plain, b_mem);
  const dnnl::matmul mm(pd);
  const double s = median_seconds(
      [&] {
        mm.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
        stream.wait();
      },
      runs);
  return 2.0 * n * n * n / s / 1e9;
}

json run_peer(const std::string& python, const std::string& peer, const std::vector<std::string>& models,
              const std::vector<std::string>& precisions, int threads, int runs, bool tuned) {
  const std::string out =
      "/tmp/clip_bench_peer_" + std::to_string(::getpid()) + (tuned ? "_tuned" : "_plain") + ".json";
  std::string cmd = tuned ? "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 " : "";
  cmd += python + " " + peer + " bench --threads " + std::to_string(threads) + " --runs " + std::to_string(runs) +
         " --json " + out + " --models";
  for (const auto& m : models) cmd += " " + m;
  cmd += " --precisions";
  for (const auto& p : precisions) cmd += " " + p;
  cmd += " > /dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::cerr << "peer failed: " << cmd << "\n";
    return json();
  }
  json j = json::parse(clip::util::read_file(out));
  std::remove(out.c_str());
  return j;
}

// The random model (seed 0, as measured) as an fp32 safetensors file with its config.
void save_random_model(const clip::ModelConfig& cfg, const std::string& path) {
  const clip::Model m = clip::Model::random(cfg, 0);
  std::vector<clip::io::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  for (const auto& [k, v] : m.state_dict()) {
    if (!v.is_floating_point()) continue;
    keep.push_back(v.contiguous());
    tensors.push_back({k, clip::io::DType::kF32, keep.back().sizes().vec(), keep.back().data_ptr(),
                       static_cast<size_t>(keep.back().nbytes())});
  }
  clip::io::write_safetensors(path, tensors, {{"config", clip::config_to_json(m.config())}});
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models = {"vit-b-32", "rn50"}, precisions = {"fp32", "bf16"};
  std::vector<std::string> image_batches = {"1", "8", "32"}, text_batches = {"1", "32", "256"};
  std::string peer = std::string(CLIP_SOURCE_DIR) + "/../shared/peer/torch_clip.py", python = "/usr/bin/python3",
              json_out, save_model;
  int threads = 0, runs = 5;
  bool with_peer = true, peer_plain_too = true, cosine = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto list = [&](std::vector<std::string>& v) {
      v.clear();
      while (i + 1 < argc && argv[i + 1][0] != '-') v.push_back(argv[++i]);
    };
    if (a == "--models") list(models);
    else if (a == "--precisions") list(precisions);
    else if (a == "--image-batches") list(image_batches);
    else if (a == "--text-batches") list(text_batches);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--peer" && i + 1 < argc) peer = argv[++i];
    else if (a == "--python" && i + 1 < argc) python = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_out = argv[++i];
    else if (a == "--no-peer") with_peer = false;
    else if (a == "--cosine") cosine = true;
    else if (a == "--save-model" && i + 1 < argc) save_model = argv[++i];
    else if (a == "--peer-tuned-only") peer_plain_too = false;
    else {
      std::cerr << "unknown or incomplete flag " << a << "\n";
      return 2;
    }
  }
  if (!save_model.empty()) {
    save_random_model(clip::named_config(config_name(models.at(0))), save_model);
    return 0;
  }
  clip::keep_freed_memory_for_reuse();
  clip::set_threads(threads);
  threads = torch::get_num_threads();
  json result = {{"threads", threads}, {"runs", runs}};

  // --cosine: each precision's features against fp32's on the same weights and inputs (32 random
  // images, 32 short prompts): mean and min cosine per tower. No timing.
  if (cosine) {
    json cos = json::object();
    for (const auto& name : models) {
      const clip::ModelConfig cfg = clip::named_config(config_name(name));
      clip::Model m = clip::Model::random(cfg, 0);
      torch::manual_seed(1);
      const torch::Tensor x = torch::randn({32, 3, cfg.image_resolution, cfg.image_resolution});
      const torch::Tensor ids = short_prompts(32);
      m.set_precision(clip::Precision::kFP32);
      const torch::Tensor image_ref = m.encode_image(x), text_ref = m.encode_text(ids);
      for (const auto& prec : precisions) {
        if (prec == "fp32") continue;
        m.set_precision(clip::precision_from_name(prec));
        for (const auto& [tower, ref, got] : {std::tuple{"image", image_ref, m.encode_image(x)},
                                              std::tuple{"text", text_ref, m.encode_text(ids)}}) {
          const torch::Tensor c = torch::cosine_similarity(got.to(torch::kFloat64), ref.to(torch::kFloat64), 1);
          const double mean = c.mean().item<double>(), min = c.min().item<double>();
          std::printf("%-10s %-5s %-5s cosine to fp32: mean %.6f, min %.6f\n", name.c_str(), prec.c_str(), tower,
                      mean, min);
          cos[name + "/" + prec + "/" + tower] = {{"mean", mean}, {"min", min}};
        }
      }
    }
    if (!json_out.empty()) clip::util::write_file_atomic(json_out, json{{"cosine_to_fp32", cos}}.dump(2) + "\n");
    return 0;
  }

  // Our figures.
  std::map<std::string, double> ours;  // key: model/precision/tower/batch
  json gflops = json::object();
  for (const auto& name : models) {
    const clip::ModelConfig cfg = clip::named_config(config_name(name));
    clip::Model m = clip::Model::random(cfg, 0);
    for (const auto& prec : precisions) {
      m.set_precision(clip::precision_from_name(prec));
      for (const std::string& batch : image_batches) {
        const int64_t b = std::stoll(batch);
        const torch::Tensor x = torch::randn({b, 3, cfg.image_resolution, cfg.image_resolution});
        const double s = median_seconds([&] { m.encode_image(x); }, runs);
        ours[name + "/" + prec + "/image/" + std::to_string(b)] = b / s;
        if (b == 32) gflops[name + "/" + prec] = image_flops(cfg) * b / s / 1e9;
      }
      for (const std::string& batch : text_batches) {
        const int64_t b = std::stoll(batch);
        const torch::Tensor ids = short_prompts(b);
        const double s = median_seconds([&] { m.encode_text(ids); }, runs);
        ours[name + "/" + prec + "/text/" + std::to_string(b)] = b / s;
      }
    }
  }
  // The peak of the inference work, the same work as the peer's; then the load's own peak.
  const double inference_rss_mb = clip::bench::read_rss().peak_mb;
  const bool load_peak_apart = clip::bench::reset_peak_rss();
  // Load time of a ViT-B/32 safetensors file, warm cache (the second of two loads).
  const std::string st_path = "/tmp/clip_bench_vitb32_" + std::to_string(::getpid()) + ".safetensors";
  save_random_model(clip::named_config("ViT-B/32"), st_path);
  double load_s = 0;
  for (int i = 0; i < 2; ++i) {
    const auto t0 = Clock::now();
    const clip::Model m = clip::Model::load(st_path);
    load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  std::remove(st_path.c_str());
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double our_rss_mb = ru.ru_maxrss / 1024.0;
  const double load_rss_mb = clip::bench::read_rss().peak_mb;
  const double mm32 = best_matmul_gflops(torch::kFloat32, runs), mm16 = best_matmul_gflops(torch::kBFloat16, runs),
               mm8 = best_int8_matmul_gflops(runs);

  // The peer, as users get it and tuned.
  std::map<std::string, double> peer_plain, peer_tuned;
  json peer_meta;
  if (with_peer) {
    for (bool tuned : {false, true}) {
      if (!tuned && !peer_plain_too) continue;
      const json p = run_peer(python, peer, models, precisions, threads, runs, tuned);
      if (p.is_null()) continue;
      auto& dst = tuned ? peer_tuned : peer_plain;
      for (const auto& r : p["results"])
        dst[r["model"].get<std::string>() + "/" + r["precision"].get<std::string>() + "/" +
            r["tower"].get<std::string>() + "/" + std::to_string(r["batch"].get<int>())] = r["per_s"].get<double>();
      peer_meta[tuned ? "tuned" : "plain"] = {{"peak_rss_mb", p["peak_rss_mb"]}, {"peer", p["peer"]}};
    }
  }

  std::printf("CLIP++ inference vs PyTorch peer, %d threads, median of %d runs (items/s; ratio vs tuned peer)\n",
              threads, runs);
  std::printf("%-10s %-5s %-6s %6s %12s %12s %12s %8s\n", "model", "prec", "tower", "batch", "CLIP++", "peer tuned",
              "peer plain", "ratio");
  json rows = json::array();
  for (const auto& [key, v] : ours) {
    char model[32], prec[8], tower[8];
    int batch = 0;
    std::sscanf(key.c_str(), "%31[^/]/%7[^/]/%7[^/]/%d", model, prec, tower, &batch);
    const double pt = peer_tuned.count(key) ? peer_tuned[key] : 0, pp = peer_plain.count(key) ? peer_plain[key] : 0;
    std::printf("%-10s %-5s %-6s %6d %12.2f %12.2f %12.2f %7.2fx\n", model, prec, tower, batch, v, pt, pp,
                pt > 0 ? v / pt : 0.0);
    rows.push_back({{"model", model},
                    {"precision", prec},
                    {"tower", tower},
                    {"batch", batch},
                    {"ours_per_s", v},
                    {"peer_tuned_per_s", pt},
                    {"peer_plain_per_s", pp},
                    {"ratio_vs_tuned", pt > 0 ? v / pt : 0.0}});
  }
  std::printf("best 2048^3 matmul: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s, int8 %.1f GOP/s\n", mm32, mm16, mm8);
  for (auto it = gflops.begin(); it != gflops.end(); ++it) {
    const bool bf16 = it.key().find("bf16") != std::string::npos, int8 = it.key().find("int8") != std::string::npos;
    std::printf("image tower (batch 32) %-14s %.1f GFLOP/s (%.0f%% of the best matmul)\n", it.key().c_str(),
                it.value().get<double>(), 100.0 * it.value().get<double>() / (int8 ? mm8 : bf16 ? mm16 : mm32));
  }
  std::printf("ViT-B/32 safetensors load (warm cache): %.3f s\n", load_s);
  std::printf("peak RSS of the inference runs: CLIP++ %.0f MB", inference_rss_mb);
  if (peer_meta.contains("tuned")) std::printf(", peer tuned %.0f MB", peer_meta["tuned"]["peak_rss_mb"].get<double>());
  if (peer_meta.contains("plain")) std::printf(", peer plain %.0f MB", peer_meta["plain"]["peak_rss_mb"].get<double>());
  std::printf("\n");
  if (load_peak_apart) std::printf("peak RSS while writing and loading the safetensors file: %.0f MB\n", load_rss_mb);
  std::printf("peak RSS of the whole run (getrusage): %.0f MB\n", our_rss_mb);
  result["rows"] = rows;
  result["matmul_gflops"] = {{"fp32", mm32}, {"bf16", mm16}, {"int8", mm8}};
  result["vit_image_gflops"] = gflops;
  result["load_seconds_vit_b32"] = load_s;
  result["peak_rss_mb"] = our_rss_mb;
  result["inference_peak_rss_mb"] = inference_rss_mb;
  if (load_peak_apart) result["load_peak_rss_mb"] = load_rss_mb;
  result["peer"] = peer_meta;
  if (!json_out.empty()) clip::util::write_file_atomic(json_out, result.dump(2) + "\n");
  return 0;
}
