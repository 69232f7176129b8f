// `clip index duplicates`: rows with the same content (sha256), and groups of rows whose
// embeddings are within a cosine threshold of each other (re-encodes, resized copies, edits).
#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <unordered_map>

#include "clip/error.h"
#include "clip/index.h"
#include "index/blas_threads.h"
#include "index/generation_rows.h"

namespace clip::index {
namespace {

// Union-find over row ids (path halving).
class Components {
 public:
  explicit Components(int64_t n) : parent_(static_cast<size_t>(n)) { std::iota(parent_.begin(), parent_.end(), 0); }
  int64_t find(int64_t x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void join(int64_t a, int64_t b) {
    a = find(a), b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }

 private:
  std::vector<int64_t> parent_;
};

constexpr int64_t kQueryBlock = 4096;  // rows searched at once: bounds the range search's result memory

}  // namespace

Duplicates find_duplicates(const ImageIndex& index, float threshold) {
  if (!(threshold > 0 && threshold <= 1))
    throw Error("threshold " + std::to_string(threshold) + ": expected a cosine in (0, 1]");
  const Manifest& m = index.manifest();
  const int64_t n = index.size();
  Duplicates out;

  std::map<std::string, std::vector<int64_t>> by_hash;  // ordered: groups come out in a stable order
  for (int64_t i = 0; i < n; ++i) {
    FileRecord r = index.record(i);
    if (!r.sha256.empty()) by_hash[std::move(r.sha256)].push_back(i);
  }
  for (const auto& [hash, ids] : by_hash) {
    if (ids.size() < 2) continue;
    DuplicateGroup g;
    g.sha256 = hash;
    for (int64_t id : ids) g.members.push_back({id, index.record(id).path, 1.0f});
    out.exact.push_back(std::move(g));
  }
  if (n < 2) return out;

  // The stored embeddings, searched exactly: an approximate index could miss near pairs.
  const GenerationRows rows = GenerationRows::open(index.dir(), m.chunks, m.dim);
  Components components(n);
  std::vector<float> best(static_cast<size_t>(n), -1.0f);
  const OneBlasThread one_blas_thread;  // FAISS's OpenMP threads do the parallel work
  try {
    faiss::IndexFlatIP flat(m.dim);
    std::vector<float> block;
    for (int64_t begin = 0; begin < n; begin += kQueryBlock) {
      const int64_t count = std::min(kQueryBlock, n - begin);
      block.resize(static_cast<size_t>(count) * static_cast<size_t>(m.dim));
      rows.read(begin, count, block.data());
      flat.add(count, block.data());
    }
    // FAISS keeps inner products strictly above the radius; the float below the threshold keeps
    // pairs exactly at it too.
    const float radius = std::nextafter(threshold, -1.0f);
    for (int64_t begin = 0; begin < n; begin += kQueryBlock) {
      const int64_t count = std::min(kQueryBlock, n - begin);
      faiss::RangeSearchResult result(count);
      flat.range_search(count, flat.get_xb() + begin * m.dim, radius, &result);
      for (int64_t q = 0; q < count; ++q) {
        const int64_t a = begin + q;
        for (size_t r = result.lims[q]; r < result.lims[q + 1]; ++r) {
          const int64_t b = result.labels[r];
          if (b == a || b < 0 || b >= n) continue;
          components.join(a, b);
          best[a] = std::max(best[a], result.distances[r]);
        }
      }
    }
  } catch (const faiss::FaissException& e) {
    throw Error(index.dir() + ": FAISS range search failed: " + e.what());
  }
  std::map<int64_t, std::vector<int64_t>> groups;  // by smallest id
  for (int64_t i = 0; i < n; ++i)
    if (best[i] >= 0 || components.find(i) != i) groups[components.find(i)].push_back(i);
  for (const auto& [root, ids] : groups) {
    if (ids.size() < 2) continue;
    const std::string first = index.record(ids[0]).sha256;
    const bool one_content = !first.empty() && std::all_of(ids.begin(), ids.end(), [&](int64_t id) {
      return index.record(id).sha256 == first;
    });
    if (one_content) continue;
    DuplicateGroup g;
    for (int64_t id : ids) g.members.push_back({id, index.record(id).path, best[id]});
    out.near.push_back(std::move(g));
  }
  return out;
}

}  // namespace clip::index
