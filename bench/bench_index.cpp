// The index at scale, on synthetic vectors: clustered unit vectors written as clip-retrieval chunks
// (img_emb/img_emb_N.npy), imported as IVF-PQ (the streaming import), then searched with and
// without re-ranking: build time and peak memory of the import, query latency p50/p99 (k = 10,
// one query at a time, 2 threads), recall@10 against exact search over the stored embeddings, and
// the memory of an opened index (loaded and memory-mapped).
//
//   bench_index [--rows 1000000] [--dim 512] [--clusters 10000] [--pq-m 64] [--nlist 0]
//               [--nprobe 32] [--train-sample 200000] [--rerank 100] [--queries 200]
//               [--dir /tmp/clip_bench_index] [--keep] [--json out.json]
//
// No peer: FAISS is what the peer would use too. The data set: `clusters` centres drawn
// uniformly on the sphere, each row a centre plus Gaussian noise (σ = 0.5/√dim per coordinate),
// normalized; queries are further points of the same clusters. Chunks of 1M rows (float32).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "index/manifest.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Rows [first, first + n) of the synthetic set (row r's randomness depends on r alone).
void synthetic_rows(const std::vector<float>& centres, int dim, int64_t first, int64_t n, std::vector<float>& out) {
  const int64_t clusters = static_cast<int64_t>(centres.size()) / dim;
  out.resize(static_cast<size_t>(n) * dim);
  const float sigma = 0.5f / std::sqrt(static_cast<float>(dim));
  for (int64_t i = 0; i < n; ++i) {
    std::mt19937_64 rng(static_cast<uint64_t>(first + i) * 0x9E3779B97F4A7C15ull + 1);
    std::normal_distribution<float> noise(0.0f, sigma);
    const float* c = &centres[static_cast<size_t>(rng() % clusters) * dim];
    float* row = &out[static_cast<size_t>(i) * dim];
    double norm = 0;
    for (int j = 0; j < dim; ++j) {
      row[j] = c[j] + noise(rng);
      norm += double(row[j]) * row[j];
    }
    const float inv = static_cast<float>(1 / std::sqrt(norm));
    for (int j = 0; j < dim; ++j) row[j] *= inv;
  }
}

// The exact top-k ids of each query over the mapped rows (a pass over all rows, all queries at once).
std::vector<std::vector<int64_t>> exact_top_k(const clip::index::GenerationRows& rows, const std::vector<float>& q,
                                              int nq, int k) {
  const int dim = rows.dim();
  std::vector<std::vector<std::pair<float, int64_t>>> best(nq);
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t r = 0; r < rows.count(); ++r) {
    rows.read(r, 1, row.data());
    const float* x = row.data();
    for (int i = 0; i < nq; ++i) {
      float dot = 0;
      for (int j = 0; j < dim; ++j) dot += q[static_cast<size_t>(i) * dim + j] * x[j];
      auto& b = best[i];
      if (static_cast<int>(b.size()) < k || dot > b.front().first) {
        b.emplace_back(dot, r);
        std::push_heap(b.begin(), b.end(), std::greater<>());
        if (static_cast<int>(b.size()) > k) {
          std::pop_heap(b.begin(), b.end(), std::greater<>());
          b.pop_back();
        }
      }
    }
    if ((r & 0xFFFF) == 0xFFFF) rows.release(r - 0xFFFF, r + 1);
  }
  std::vector<std::vector<int64_t>> ids(nq);
  for (int i = 0; i < nq; ++i)
    for (const auto& [s, id] : best[i]) ids[i].push_back(id);
  return ids;
}

struct SearchFigures {
  double p50_ms = 0, p99_ms = 0, recall = 0, open_s = 0, rss_mb = 0;
};

SearchFigures measure_search(const std::string& dir, const clip::index::OpenOptions& options,
                             const std::vector<float>& q, int nq, int dim,
                             const std::vector<std::vector<int64_t>>& exact) {
  SearchFigures f;
  clip::bench::reset_peak_rss();
  const double rss_before = clip::bench::read_rss().now_mb;
  const auto t0 = Clock::now();
  const clip::index::ImageIndex idx = clip::index::ImageIndex::open(dir, options);
  f.open_s = seconds_since(t0);
  std::vector<double> ms;
  double recall = 0;
  for (int i = 0; i < nq; ++i) {
    const auto t = Clock::now();
    const std::vector<clip::index::Hit> hits = idx.search(&q[static_cast<size_t>(i) * dim], 10);
    ms.push_back(seconds_since(t) * 1000);
    int found = 0;
    for (const auto& h : hits) found += std::count(exact[i].begin(), exact[i].end(), h.id) > 0;
    recall += found / 10.0;
  }
  std::sort(ms.begin(), ms.end());
  f.p50_ms = ms[ms.size() / 2];
  f.p99_ms = ms[std::min(ms.size() - 1, static_cast<size_t>(std::ceil(ms.size() * 0.99)) - 1)];
  f.recall = recall / nq;
  f.rss_mb = clip::bench::read_rss().peak_mb - rss_before;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 1000000, train_sample = 200000;
  int dim = 512, clusters = 10000, pq_m = 64, nlist = 0, nprobe = 32, rerank = 100, queries = 200;
  std::string dir = "/tmp/clip_bench_index", json_out, storage = "f32";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--rows") rows = std::stoll(next());
    else if (a == "--dim") dim = std::stoi(next());
    else if (a == "--clusters") clusters = std::stoi(next());
    else if (a == "--pq-m") pq_m = std::stoi(next());
    else if (a == "--nlist") nlist = std::stoi(next());
    else if (a == "--nprobe") nprobe = std::stoi(next());
    else if (a == "--train-sample") train_sample = std::stoll(next());
    else if (a == "--rerank") rerank = std::stoi(next());
    else if (a == "--queries") queries = std::stoi(next());
    else if (a == "--dir") dir = next();
    else if (a == "--json") json_out = next();
    else if (a == "--storage") storage = next();
    else if (a == "--keep") keep = true;
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  clip::set_threads(2);
  fs::remove_all(dir);
  fs::create_directories(dir + "/emb/img_emb");

  // The centres, then the chunks (1M rows each) and the path list.
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> n(0, 1);
    for (float& v : centres) v = n(rng);
  }
  auto t0 = Clock::now();
  constexpr int64_t kChunk = 1000000;
  std::vector<float> block;
  {
    std::ofstream paths(dir + "/paths.txt");
    for (int64_t first = 0, c = 0; first < rows; first += kChunk, ++c) {
      const int64_t n = std::min(kChunk, rows - first);
      synthetic_rows(centres, dim, first, n, block);
      clip::util::write_npy(dir + "/emb/img_emb/img_emb_" + std::to_string(c) + ".npy", "<f4", {n, dim},
                            block.data(), block.size() * sizeof(float));
      for (int64_t r = first; r < first + n; ++r) paths << "img/" << r << ".jpg\n";
    }
  }
  block = {};
  const double write_s = seconds_since(t0);
  std::printf("wrote %lld x %d float32 rows in chunks of %lld: %.1f s\n", static_cast<long long>(rows), dim,
              static_cast<long long>(kChunk), write_s);

  // The import, its own peak memory apart.
  clip::index::ImportOptions o;
  o.embeddings = dir + "/emb";
  o.paths = dir + "/paths.txt";
  o.params.kind = clip::index::IndexKind::kIvfPq;
  o.params.pq_m = pq_m;
  o.params.nlist = nlist;
  o.params.nprobe = nprobe;
  o.params.train_sample = train_sample;
  o.params.rerank = rerank;
  o.storage = clip::index::storage_from_name(storage);
  clip::bench::reset_peak_rss();
  const double rss_before = clip::bench::read_rss().now_mb;
  t0 = Clock::now();
  clip::index::import_index({"/synthetic/model", "{}", "fp32"}, dim, o, dir + "/index");
  const double import_s = seconds_since(t0);
  const double import_peak_mb = clip::bench::read_rss().peak_mb - rss_before;
  const clip::index::Manifest m = clip::index::read_manifest(dir + "/index");
  const double faiss_mb = static_cast<double>(fs::file_size(dir + "/index/" + m.faiss_file)) / (1 << 20);
  double chunks_mb = 0;
  for (const auto& c : m.chunks)
    chunks_mb += static_cast<double>(fs::file_size(dir + "/index/" + c.embeddings) +
                                     fs::file_size(dir + "/index/" + c.metadata)) / (1 << 20);
  std::printf("index chunks (%s): %zu chunks, %.0f MB\n", storage.c_str(), m.chunks.size(), chunks_mb);
  std::printf("import (IVF-PQ, nlist %s, pq-m %d, %lld training rows): %.1f s, peak memory +%.0f MB, FAISS file %.0f MB\n",
              nlist ? std::to_string(nlist).c_str() : "auto", pq_m, static_cast<long long>(train_sample), import_s,
              import_peak_mb, faiss_mb);

  // Queries: further points of the clusters; exact answers over the stored embeddings.
  std::vector<float> q;
  synthetic_rows(centres, dim, rows + 12345, queries, q);
  t0 = Clock::now();
  const auto exact = exact_top_k(
      clip::index::GenerationRows::open(dir + "/index", m.chunks, m.dim), q, queries, 10);
  std::printf("exact top-10 of %d queries: %.1f s\n", queries, seconds_since(t0));

  json result = {{"rows", rows}, {"dim", dim}, {"clusters", clusters}, {"pq_m", pq_m}, {"nprobe", nprobe},
                 {"train_sample", train_sample}, {"write_s", write_s}, {"import_s", import_s},
                 {"import_peak_mb", import_peak_mb}, {"faiss_mb", faiss_mb}, {"storage", storage},
                 {"chunks_mb", chunks_mb}};
  std::printf("%-22s %8s %8s %9s %8s %10s\n", "search", "p50 ms", "p99 ms", "recall@10", "open s", "memory MB");
  for (const auto& [name, opts] :
       {std::pair{"loaded, no rerank", clip::index::OpenOptions{false, 0}},
        std::pair{"loaded, rerank", clip::index::OpenOptions{false, rerank}},
        std::pair{"mmap, rerank", clip::index::OpenOptions{true, rerank}}}) {
    const SearchFigures f = measure_search(dir + "/index", opts, q, queries, dim, exact);
    std::printf("%-22s %8.2f %8.2f %9.3f %8.2f %10.0f\n", name, f.p50_ms, f.p99_ms, f.recall, f.open_s, f.rss_mb);
    result["search"][name] = {{"p50_ms", f.p50_ms}, {"p99_ms", f.p99_ms}, {"recall_at_10", f.recall},
                              {"open_s", f.open_s}, {"memory_mb", f.rss_mb}};
  }
  if (!json_out.empty()) clip::util::write_file_atomic(json_out, result.dump(2) + "\n");
  if (!keep) fs::remove_all(dir);
  return 0;
}
