#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>

#include <algorithm>
#include <cmath>

#include "clip/data.h"
#include "clip/error.h"
#include "clip/index.h"
#include "index/faiss_store.h"
#include "index/manifest.h"
#include "index/shard_members.h"
#include "util/file_io.h"

namespace clip::index {

ImageIndex::ImageIndex(ImageIndex&&) noexcept = default;
ImageIndex& ImageIndex::operator=(ImageIndex&&) noexcept = default;
ImageIndex::~ImageIndex() = default;

ImageIndex ImageIndex::open(const std::string& index_dir) {
  ImageIndex index;
  index.dir_ = index_dir;
  index.manifest_ = read_manifest(index_dir);
  const Manifest& m = index.manifest_;
  const std::string meta = index_dir + "/" + m.metadata_file;
  index.records_ = records_from_jsonl(util::read_file(meta), meta);
  if (static_cast<int64_t>(index.records_.size()) != m.count)
    throw Error(meta + ": " + std::to_string(index.records_.size()) + " rows, the manifest says " + std::to_string(m.count));
  index.faiss_ = read_faiss(index_dir + "/" + m.faiss_file, m.params, m.dim, m.count);
  return index;
}

const FileRecord& ImageIndex::record(int64_t id) const {
  if (id < 0 || id >= size())
    throw Error("image id " + std::to_string(id) + ": expected 0.." + std::to_string(size() - 1));
  return records_[static_cast<size_t>(id)];
}

std::string ImageIndex::read_image(int64_t id) const {
  const FileRecord& r = record(id);
  std::string shard, member;
  if (manifest_.source.kind == "shards" && split_member_record_path(r.path, &shard, &member))
    return data::read_tar_member(shard, member);
  return util::read_file(r.path);
}

std::vector<Hit> ImageIndex::search(const float* query, int k) const {
  if (k < 1) throw Error("k = " + std::to_string(k) + ": expected at least 1");
  std::vector<float> q(query, query + dim());
  double norm = 0;
  for (float v : q) norm += double(v) * v;
  if (!(norm > 0) || !std::isfinite(norm)) throw Error("the query embedding is zero or not finite");
  for (float& v : q) v = static_cast<float>(v / std::sqrt(norm));
  const int64_t kk = std::min<int64_t>(k, size());
  std::vector<Hit> hits;
  if (kk == 0) return hits;
  std::vector<float> scores(static_cast<size_t>(kk));
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(kk));
  try {
    faiss_->search(1, q.data(), kk, scores.data(), ids.data());
  } catch (const faiss::FaissException& e) {
    throw Error(dir_ + ": FAISS search failed: " + e.what());
  }
  for (int64_t i = 0; i < kk; ++i) {
    if (ids[i] < 0) continue;  // IVF/HNSW may find fewer than k
    hits.push_back({ids[i], scores[i], records_[static_cast<size_t>(ids[i])].path});
  }
  return hits;
}

std::vector<Hit> ImageIndex::search(const torch::Tensor& query, int k) const {
  const torch::Tensor q = query.to(torch::kCPU, torch::kFloat).contiguous().reshape({-1});
  if (q.numel() != dim())
    throw Error("the query embedding has " + std::to_string(q.numel()) + " values, the index " + std::to_string(dim()));
  return search(q.data_ptr<float>(), k);
}

}  // namespace clip::index
