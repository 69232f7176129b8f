// Image preprocessing throughput beside Pillow (the reference's exact steps), in one run on the
// same JPEGs: decode + resize + crop + normalize at --size, on one thread and on all cores, plus
// the fast JPEG path (DCT scaling) with its speed-up and the cosine of its model inputs to the
// exact path's. The JPEGs (640x480, 1920x1080, 4000x3000 from three photos) are made at run time
// by bench/pillow_preprocess.py in a temporary folder.
//
//   bench_image [--size 224] [--runs 5] [--threads N] [--python /usr/bin/python3]
//               [--photos a.png,b.jpg,...] [--json out.json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "clip/image.h"
#include "util/file_io.h"
#include "util/npy.h"
#include "util/thread_pool.h"

namespace {

using clip::bench::median;
using clip::bench::run_command;

using Clock = std::chrono::steady_clock;
using clip::image::PreprocessOptions;

// Median images/s of `runs` timed calls of fn(), which processes `images` images (after a warm-up).
template <class Fn>
double images_per_s(int runs, size_t images, Fn fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return static_cast<double>(images) / median(t);
}

std::vector<std::string> repeat(const std::vector<std::string>& v, int k) {
  std::vector<std::string> out;
  for (int i = 0; i < k; ++i) out.insert(out.end(), v.begin(), v.end());
  return out;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

int main(int argc, char** argv) {
  int size = 224, runs = 5, threads = clip::util::default_thread_count();
  std::string python = "/usr/bin/python3", json_out;
  const std::string src = CLIP_SOURCE_DIR;
  std::string photos = src + "/tests/data/images/files/chelsea.png," + src + "/tests/data/images/files/rocket.jpg," +
                       src + "/tests/data/images/files/astronaut_q95.jpg";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--size") size = std::stoi(next());
    else if (a == "--runs") runs = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--python") python = next();
    else if (a == "--photos") photos = next();
    else if (a == "--json") json_out = next();
    else {
      std::cerr << "usage: bench_image [--size N] [--runs R] [--threads T] [--python P] [--photos a,b] [--json F]\n";
      return 2;
    }
  }
  const std::string script = src + "/bench/pillow_preprocess.py";
  char tmpl[] = "/tmp/bench_image_XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  std::string photo_args;
  for (size_t b = 0, e; b < photos.size(); b = e + 1) {
    e = photos.find(',', b);
    if (e == std::string::npos) e = photos.size();
    photo_args += " " + quote(photos.substr(b, e - b));
  }
  std::cerr << "making the benchmark JPEGs in " << dir << " ...\n";
  const auto made =
      nlohmann::json::parse(run_command(python + " " + quote(script) + " make --out " + quote(dir) + photo_args));

  struct Case {
    int w, h, repeat;
  };
  const Case cases[] = {{640, 480, 16}, {1920, 1080, 4}, {4000, 3000, 1}};
  nlohmann::json results = nlohmann::json::array();
  std::printf("\nCLIP preprocessing at %d px: decode + resize + crop + normalize, images/s (median of %d runs)\n", size,
              runs);
  const std::string ours_n = "ours " + std::to_string(threads) + "T",
                    pillow_n = "Pillow " + std::to_string(threads) + "T";
  std::printf("%-10s | %9s %9s %6s | %9s %9s %6s | %9s %8s %8s | %s\n", "JPEG", "ours 1T", "Pillow 1T", "ratio",
              ours_n.c_str(), pillow_n.c_str(), "ratio", "fast 1T", "speedup", "cos min", "exact vs Pillow");
  for (const Case& c : cases) {
    std::vector<std::string> files;
    for (const auto& f : made) {
      const std::string s = f.get<std::string>();
      if (s.find("/" + std::to_string(c.w) + "x" + std::to_string(c.h) + "_") != std::string::npos) files.push_back(s);
    }
    const std::vector<std::string> work = repeat(files, c.repeat);
    PreprocessOptions exact;
    exact.size = size;
    PreprocessOptions fast = exact;
    fast.fast_jpeg = true;

    clip::image::Preprocessor p_exact(exact), p_fast(fast);
    std::vector<float> input(p_exact.input_size());
    const double ours1 = images_per_s(runs, work.size(), [&] {
      for (const auto& f : work) p_exact.run_file(f, input.data());
    });
    const double fast1 = images_per_s(runs, work.size(), [&] {
      for (const auto& f : work) p_fast.run_file(f, input.data());
    });
    const std::vector<std::string> work_n = repeat(files, c.repeat * std::max(1, threads) * 2);
    const double oursN = images_per_s(runs, work_n.size(), [&] {
      const auto items = clip::image::preprocess_files(work_n, exact, threads);
      for (const auto& it : items)
        if (!it.ok()) throw std::runtime_error(it.error);
    });

    // The fast path's model inputs against the exact path's; the exact path's against Pillow's.
    double cos_min = 1.0, exact_diff = 0.0;
    std::vector<float> fin(p_exact.input_size());
    std::string list;
    for (const auto& f : files) list += " " + quote(f);
    const std::string ref_path = dir + "/ref_" + std::to_string(c.w) + ".npy";
    run_command(python + " " + quote(script) + " dump --size " + std::to_string(size) + " --out " + quote(ref_path) +
                list);
    const clip::util::NpyArray ref = clip::util::read_npy(ref_path);
    for (size_t k = 0; k < files.size(); ++k) {
      p_exact.run_file(files[k], input.data());
      p_fast.run_file(files[k], fin.data());
      double dot = 0, na = 0, nb = 0;
      for (size_t i = 0; i < input.size(); ++i) {
        dot += double(input[i]) * fin[i];
        na += double(input[i]) * input[i];
        nb += double(fin[i]) * fin[i];
      }
      cos_min = std::min(cos_min, dot / std::sqrt(na * nb));
      const float* r = reinterpret_cast<const float*>(ref.data.data()) + k * input.size();
      for (size_t i = 0; i < input.size(); ++i) exact_diff = std::max(exact_diff, std::fabs(double(input[i]) - r[i]));
    }

    auto pillow = [&](int t, int rep) {
      const std::string cmd = python + " " + quote(script) + " bench --size " + std::to_string(size) + " --threads " +
                              std::to_string(t) + " --runs " + std::to_string(runs) + " --repeat " +
                              std::to_string(rep) + list;
      return nlohmann::json::parse(run_command(cmd))["images_per_s"].get<double>();
    };
    const double pillow1 = pillow(1, c.repeat);
    const double pillowN = pillow(threads, c.repeat * std::max(1, threads) * 2);

    const std::string label = std::to_string(c.w) + "x" + std::to_string(c.h);
    std::printf("%-10s | %9.1f %9.1f %5.2fx | %9.1f %9.1f %5.2fx | %9.1f %7.2fx %8.5f | max|diff| %.2g\n",
                label.c_str(), ours1, pillow1, ours1 / pillow1, oursN, pillowN, oursN / pillowN, fast1, fast1 / ours1,
                cos_min, exact_diff);
    results.push_back({{"jpeg", label},
                       {"files", files.size()},
                       {"ours_1t", ours1},
                       {"pillow_1t", pillow1},
                       {"ratio_1t", ours1 / pillow1},
                       {"threads", threads},
                       {"ours_all", oursN},
                       {"pillow_all", pillowN},
                       {"ratio_all", oursN / pillowN},
                       {"fast_1t", fast1},
                       {"fast_speedup", fast1 / ours1},
                       {"fast_cosine_min", cos_min},
                       {"exact_vs_pillow_max_abs_diff", exact_diff}});
  }
  std::printf(
      "\nours: clip::image::Preprocessor (exact unless 'fast'); Pillow: bench/pillow_preprocess.py "
      "(%d worker processes for all cores); 'fast': --fast-jpeg, DCT scale k/8 keeping the short side >= 2x%d\n",
      threads, size);
  if (!json_out.empty()) {
    nlohmann::json j = {{"benchmark", "image_preprocess"}, {"size", size}, {"runs", runs}, {"results", results}};
    clip::util::write_file_atomic(json_out, j.dump(1) + "\n");
    std::printf("wrote %s\n", json_out.c_str());
  }
  run_command("rm -rf " + quote(dir));
  return 0;
}
