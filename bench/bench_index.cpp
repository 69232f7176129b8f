// The index at scale, on synthetic vectors: clustered unit vectors written as clip-retrieval chunks
// (img_emb/img_emb_N.npy), imported as IVF-PQ (the streaming import), then searched with and
// without re-ranking: build time and peak memory of the import, query latency p50/p99 (k = 10,
// one query at a time, 2 threads), recall@10 against exact search over the stored embeddings, and
// the memory of an opened index (loaded and memory-mapped): growth of the peak resident size, and
// of its anonymous part (allocations, without the clean pages of mapped files).
//
//   bench_index [--rows 1000000] [--dim 512] [--clusters 10000] [--pq-m 64] [--nlist 0]
//               [--nprobe 32] [--train-sample 200000] [--rerank 100] [--queries 200]
//               [--dir /tmp/clip_bench_index] [--keep] [--json out.json] [--model CHECKPOINT]
//               [--search-only] [--cold]
//
// --search-only measures the searches again on the index an earlier run kept (same --rows, --dim,
// --clusters and --queries), without writing or importing.
// --cold evicts the index's files from the page cache before each search row (posix_fadvise
// DONTNEED, no root needed), so the rows show what a collection larger than memory costs: the
// bytes read from the device and the major page faults per query.
// --model records that checkpoint (its embedding width must be --dim) as the index's model, so that
// `clip serve --index DIR/index` can open the kept index (bench/serve_index_memory.sh measures it).
//
// No peer: FAISS is what the peer would use too. The data set: `clusters` centres drawn
// uniformly on the sphere, each row a centre plus Gaussian noise (σ = 0.5/√dim per coordinate),
// normalized; queries are further points of the same clusters. Chunks of 1M rows (float32).
#include <fcntl.h>
#include <faiss/IndexFlat.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "clip/index.h"
#include "clip/model.h"
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

// The exact top-k ids of each query over the mapped rows: one pass over the rows a block at a time,
// each block searched exhaustively by FAISS (a BLAS product), the blocks' answers merged.
std::vector<std::vector<int64_t>> exact_top_k(const clip::index::GenerationRows& rows, const std::vector<float>& q,
                                              int nq, int k) {
  const int dim = rows.dim();
  constexpr int64_t kBlock = 1 << 16;
  std::vector<std::vector<std::pair<float, int64_t>>> best(nq);
  std::vector<float> block, scores(static_cast<size_t>(nq) * k);
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(nq) * k);
  for (int64_t begin = 0; begin < rows.count(); begin += kBlock) {
    const int64_t n = std::min(kBlock, rows.count() - begin);
    block.resize(static_cast<size_t>(n) * dim);
    rows.read(begin, n, block.data());
    rows.release(begin, begin + n);
    faiss::IndexFlatIP flat(dim);
    flat.add(n, block.data());
    flat.search(nq, q.data(), k, scores.data(), ids.data());
    for (int i = 0; i < nq; ++i)
      for (int j = 0; j < k; ++j)
        if (ids[static_cast<size_t>(i) * k + j] >= 0)
          best[i].emplace_back(scores[static_cast<size_t>(i) * k + j], begin + ids[static_cast<size_t>(i) * k + j]);
    for (auto& b : best) {  // keep the k best so far
      std::sort(b.begin(), b.end(), std::greater<>());
      if (static_cast<int>(b.size()) > k) b.resize(static_cast<size_t>(k));
    }
  }
  std::vector<std::vector<int64_t>> top(nq);
  for (int i = 0; i < nq; ++i)
    for (const auto& [score, id] : best[i]) top[i].push_back(id);
  return top;
}

struct SearchFigures {
  double p50_ms = 0, p99_ms = 0, recall = 0, open_s = 0, rss_mb = 0, anon_mb = 0, read_kb_per_query = 0,
         major_faults_per_query = 0;
};

// Bytes this process has read from the storage device (read_bytes of /proc/self/io): page faults
// on mapped files included, page-cache hits not.
double device_read_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  double value = 0;
  while (io >> key >> value)
    if (key == "read_bytes:") return value;
  return 0;
}

long major_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_majflt;
}

// Drops the clean page-cache pages of every file in the index directory (those no process maps).
void evict_from_page_cache(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

SearchFigures measure_search(const std::string& dir, const clip::index::OpenOptions& options,
                             const std::vector<float>& q, int nq, int dim,
                             const std::vector<std::vector<int64_t>>& exact, bool cold) {
  SearchFigures f;
  if (cold) evict_from_page_cache(dir);
  clip::bench::reset_peak_rss();
  const clip::bench::Rss rss_before = clip::bench::read_rss();
  const auto t0 = Clock::now();
  const clip::index::ImageIndex idx = clip::index::ImageIndex::open(dir, options);
  f.open_s = seconds_since(t0);
  std::vector<double> ms;
  double recall = 0;
  const double read_before = device_read_bytes();
  const long faults_before = major_faults();
  for (int i = 0; i < nq; ++i) {
    const auto t = Clock::now();
    const std::vector<clip::index::Hit> hits = idx.search(&q[static_cast<size_t>(i) * dim], 10);
    ms.push_back(seconds_since(t) * 1000);
    int found = 0;
    for (const auto& h : hits) found += std::count(exact[i].begin(), exact[i].end(), h.id) > 0;
    recall += found / 10.0;
  }
  f.read_kb_per_query = (device_read_bytes() - read_before) / 1024 / nq;
  f.major_faults_per_query = static_cast<double>(major_faults() - faults_before) / nq;
  std::sort(ms.begin(), ms.end());
  f.p50_ms = ms[ms.size() / 2];
  f.p99_ms = ms[std::min(ms.size() - 1, static_cast<size_t>(std::ceil(ms.size() * 0.99)) - 1)];
  f.recall = recall / nq;
  const clip::bench::Rss rss_after = clip::bench::read_rss();
  f.rss_mb = rss_after.peak_mb - rss_before.now_mb;
  f.anon_mb = rss_after.anon_mb - rss_before.anon_mb;
  return f;
}

struct BenchOptions {
  int64_t rows = 1000000, train_sample = 200000;
  int dim = 512, clusters = 10000, pq_m = 64, nlist = 0, nprobe = 32, rerank = 100, queries = 200;
  std::string dir = "/tmp/clip_bench_index", json_out, storage = "f32", model_path;
  bool keep = false, search_only = false, cold = false;
};

BenchOptions parse_options(int argc, char** argv) {
  BenchOptions b;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--rows") b.rows = std::stoll(next());
    else if (a == "--dim") b.dim = std::stoi(next());
    else if (a == "--clusters") b.clusters = std::stoi(next());
    else if (a == "--pq-m") b.pq_m = std::stoi(next());
    else if (a == "--nlist") b.nlist = std::stoi(next());
    else if (a == "--nprobe") b.nprobe = std::stoi(next());
    else if (a == "--train-sample") b.train_sample = std::stoll(next());
    else if (a == "--rerank") b.rerank = std::stoi(next());
    else if (a == "--queries") b.queries = std::stoi(next());
    else if (a == "--dir") b.dir = next();
    else if (a == "--json") b.json_out = next();
    else if (a == "--storage") b.storage = next();
    else if (a == "--model") b.model_path = next();
    else if (a == "--keep") b.keep = true;
    else if (a == "--search-only") b.search_only = b.keep = true;
    else if (a == "--cold") b.cold = true;
    else throw std::runtime_error("unknown flag " + a);
  }
  return b;
}

// The index's model: the checkpoint given (its embedding width must be --dim), or a placeholder.
clip::index::ModelIdentity model_identity(const BenchOptions& b) {
  if (b.model_path.empty()) return {"/synthetic/model", "{}", "fp32"};
  const clip::Model model = clip::Model::load(b.model_path, {});
  if (model.config().embed_dim != b.dim)
    throw std::runtime_error(b.model_path + ": embedding width " + std::to_string(model.config().embed_dim) +
                             ", not --dim " + std::to_string(b.dim));
  return clip::index::identify_model(model, b.model_path, clip::Precision::kFP32);
}

// Writes the synthetic set as clip-retrieval chunks (1M rows each) and a path list under b.dir,
// then imports it as IVF-PQ into b.dir/index; prints and returns the figures of both.
json write_and_import(const BenchOptions& b, const std::vector<float>& centres) {
  fs::remove_all(b.dir);
  fs::create_directories(b.dir + "/emb/img_emb");
  auto t0 = Clock::now();
  constexpr int64_t kChunk = 1000000;
  {
    std::vector<float> block;
    std::ofstream paths(b.dir + "/paths.txt");
    for (int64_t first = 0, c = 0; first < b.rows; first += kChunk, ++c) {
      const int64_t n = std::min(kChunk, b.rows - first);
      synthetic_rows(centres, b.dim, first, n, block);
      clip::util::write_npy(b.dir + "/emb/img_emb/img_emb_" + std::to_string(c) + ".npy", "<f4", {n, b.dim},
                            block.data(), block.size() * sizeof(float));
      for (int64_t r = first; r < first + n; ++r) paths << "img/" << r << ".jpg\n";
    }
  }
  const double write_s = seconds_since(t0);
  std::printf("wrote %lld x %d float32 rows in chunks of %lld: %.1f s\n", static_cast<long long>(b.rows), b.dim,
              static_cast<long long>(kChunk), write_s);

  // The import, its own peak memory apart.
  clip::index::ImportOptions o;
  o.embeddings = b.dir + "/emb";
  o.paths = b.dir + "/paths.txt";
  o.params.kind = clip::index::IndexKind::kIvfPq;
  o.params.pq_m = b.pq_m;
  o.params.nlist = b.nlist;
  o.params.nprobe = b.nprobe;
  o.params.train_sample = b.train_sample;
  o.params.rerank = b.rerank;
  o.storage = clip::index::storage_from_name(b.storage);
  const clip::index::ModelIdentity identity = model_identity(b);
  clip::bench::reset_peak_rss();
  const double rss_before = clip::bench::read_rss().now_mb;
  t0 = Clock::now();
  clip::index::import_index(identity, b.dim, o, b.dir + "/index");
  const double import_s = seconds_since(t0);
  const double import_peak_mb = clip::bench::read_rss().peak_mb - rss_before;
  const clip::index::Manifest m = clip::index::read_manifest(b.dir + "/index");
  const double faiss_mb = static_cast<double>(fs::file_size(b.dir + "/index/" + m.faiss_file)) / (1 << 20);
  double chunks_mb = 0;
  for (const auto& c : m.chunks)
    chunks_mb += static_cast<double>(fs::file_size(b.dir + "/index/" + c.embeddings) +
                                     fs::file_size(b.dir + "/index/" + c.metadata)) / (1 << 20);
  std::printf("index chunks (%s): %zu chunks, %.0f MB\n", b.storage.c_str(), m.chunks.size(), chunks_mb);
  std::printf("import (IVF-PQ, nlist %s, pq-m %d, %lld training rows): %.1f s, peak memory +%.0f MB, FAISS file %.0f MB\n",
              b.nlist ? std::to_string(b.nlist).c_str() : "auto", b.pq_m, static_cast<long long>(b.train_sample),
              import_s, import_peak_mb, faiss_mb);
  return {{"write_s", write_s}, {"import_s", import_s}, {"import_peak_mb", import_peak_mb}, {"faiss_mb", faiss_mb},
          {"chunks_mb", chunks_mb}};
}

}  // namespace

int main(int argc, char** argv) try {
  const BenchOptions b = parse_options(argc, argv);
  clip::set_threads(2);
  std::vector<float> centres(static_cast<size_t>(b.clusters) * b.dim);
  {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> n(0, 1);
    for (float& v : centres) v = n(rng);
  }
  json result = {{"rows", b.rows},   {"dim", b.dim},           {"clusters", b.clusters},         {"pq_m", b.pq_m},
                 {"nlist", b.nlist}, {"nprobe", b.nprobe},     {"train_sample", b.train_sample}, {"storage", b.storage},
                 {"rerank", b.rerank}, {"queries", b.queries}, {"search_only", b.search_only},
                 {"cold", b.cold}};
  if (b.search_only) std::printf("searching the index kept in %s/index (no write, no import)\n", b.dir.c_str());
  else result.update(write_and_import(b, centres));
  const clip::index::Manifest m = clip::index::read_manifest(b.dir + "/index");
  if (m.count != b.rows)
    throw std::runtime_error(b.dir + "/index holds " + std::to_string(m.count) + " rows, not --rows " +
                             std::to_string(b.rows));

  // Queries: further points of the clusters; exact answers over the stored embeddings.
  std::vector<float> q;
  synthetic_rows(centres, b.dim, b.rows + 12345, b.queries, q);
  const auto t0 = Clock::now();
  const auto exact = exact_top_k(clip::index::GenerationRows::open(b.dir + "/index", m.chunks, m.dim), q,
                                 b.queries, 10);
  std::printf("exact top-10 of %d queries: %.1f s\n", b.queries, seconds_since(t0));

  std::printf("%-22s %8s %8s %9s %8s %10s %8s %10s %12s\n", "search", "p50 ms", "p99 ms", "recall@10", "open s",
              "peak MB", "anon MB", "read KB/q", "maj.faults/q");
  for (const auto& [name, opts] :
       {std::pair{"loaded, no rerank", clip::index::OpenOptions{false, 0}},
        std::pair{"loaded, rerank", clip::index::OpenOptions{false, b.rerank}},
        std::pair{"mmap, no rerank", clip::index::OpenOptions{true, 0}},
        std::pair{"mmap, rerank", clip::index::OpenOptions{true, b.rerank}}}) {
    const SearchFigures f = measure_search(b.dir + "/index", opts, q, b.queries, b.dim, exact, b.cold);
    std::printf("%-22s %8.2f %8.2f %9.3f %8.2f %10.0f %8.0f %10.0f %12.1f\n", name, f.p50_ms, f.p99_ms, f.recall,
                f.open_s, f.rss_mb, f.anon_mb, f.read_kb_per_query, f.major_faults_per_query);
    result["search"][name] = {{"p50_ms", f.p50_ms},   {"p99_ms", f.p99_ms},
                              {"recall_at_10", f.recall}, {"open_s", f.open_s},
                              {"memory_mb", f.rss_mb}, {"anon_mb", f.anon_mb},
                              {"read_kb_per_query", f.read_kb_per_query},
                              {"major_faults_per_query", f.major_faults_per_query}};
  }
  if (!b.json_out.empty()) clip::util::write_file_atomic(b.json_out, result.dump(2) + "\n");
  if (!b.keep) fs::remove_all(b.dir);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_index: " << e.what() << "\n";
  return 2;
}
