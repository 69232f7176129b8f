// Synthetic embedding collections for the index-at-scale tests: clustered unit vectors (no model),
// published as an index generation, and the exact (brute-force) top k they are compared with.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "clip/index.h"
#include "index/chunk_files.h"
#include "index/index_folder.h"

namespace clip::test {

// n unit vectors of `dim` floats around `clusters` random unit centres (cosine to the centre about
// 0.9), row-major. Deterministic for a seed.
inline std::vector<float> clustered_vectors(int64_t n, int dim, int clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto normalize = [dim](float* v) {
    double s = 0;
    for (int j = 0; j < dim; ++j) s += double(v[j]) * v[j];
    for (int j = 0; j < dim; ++j) v[j] = static_cast<float>(v[j] / std::sqrt(s));
  };
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (int c = 0; c < clusters; ++c) {
    for (int j = 0; j < dim; ++j) centres[c * dim + j] = normal(rng);
    normalize(&centres[c * dim]);
  }
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  const float sigma = 0.5f / std::sqrt(static_cast<float>(dim));
  std::vector<float> out(static_cast<size_t>(n) * dim);
  for (int64_t i = 0; i < n; ++i) {
    const float* c = &centres[static_cast<size_t>(pick(rng)) * dim];
    float* v = &out[static_cast<size_t>(i) * dim];
    for (int j = 0; j < dim; ++j) v[j] = c[j] + sigma * normal(rng);
    normalize(v);
  }
  return out;
}

// Rows named /synthetic/NNN.jpg (the index code never opens them here).
inline std::vector<index::FileRecord> synthetic_records(int64_t n) {
  std::vector<index::FileRecord> records(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) records[i] = {"/synthetic/" + std::to_string(i) + ".jpg", 1, 0, std::string(64, '0')};
  return records;
}

// Publishes generation 1 of an index of `rows` in `dir` (created), as `clip index build` would.
inline void publish_synthetic_index(const std::string& dir, const index::IndexParams& params, int dim,
                                    const std::vector<float>& rows) {
  index::prepare_new_index_folder(dir);
  index::Manifest m;
  m.generation = 1;
  m.model = {"/synthetic/model.safetensors", "{}", "fp32"};
  m.source = {"dir", "/synthetic", ""};
  m.params = params;
  m.dim = dim;
  const int64_t n = static_cast<int64_t>(rows.size()) / dim;
  m.chunks.push_back(index::write_chunk(dir + "/chunk-1-000000", synthetic_records(n), rows.data(), dim, m.storage));
  index::publish_generation(dir, m, {}, nullptr);
}

// The ids of the k rows with the largest inner product with `query` (ties: lower id first).
inline std::vector<int64_t> exact_top_k(const std::vector<float>& rows, int dim, const float* query, int k) {
  const int64_t n = static_cast<int64_t>(rows.size()) / dim;
  std::vector<double> scores(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < dim; ++j) s += double(query[j]) * rows[static_cast<size_t>(i) * dim + j];
    scores[i] = s;
  }
  std::vector<int64_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int64_t a, int64_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a < b; });
  ids.resize(static_cast<size_t>(k));
  return ids;
}

// The fraction of the exact top k found among the hits.
inline double recall_at(const std::vector<index::Hit>& hits, const std::vector<int64_t>& exact) {
  int found = 0;
  for (int64_t id : exact)
    found += std::any_of(hits.begin(), hits.end(), [id](const index::Hit& h) { return h.id == id; });
  return double(found) / double(exact.size());
}

}  // namespace clip::test
