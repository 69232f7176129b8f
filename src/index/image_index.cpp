#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "clip/data.h"
#include "clip/error.h"
#include "clip/index.h"
#include "index/faiss_store.h"
#include "index/generation_records.h"
#include "index/generation_rows.h"
#include "index/manifest.h"
#include "index/shard_members.h"
#include "util/file_io.h"

namespace clip::index {
namespace {

// The largest indexed file read back (for a thumbnail).
constexpr int64_t kMaxImageFileBytes = int64_t{256} << 20;

int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// The file of a record, if it is still the one indexed: opened without following a symbolic link
// (O_NOFOLLOW) or blocking on a FIFO (O_NONBLOCK), a regular file (fstat: not a FIFO or device)
// with the recorded size and mtime. The path may have been swapped since it was indexed; errors
// name the path and the reason, never the file's content.
std::string read_recorded_file(const FileRecord& r) {
  const int fd = ::open(r.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw Error(r.path + ": cannot open: " + (err == ELOOP ? "it is a symbolic link now" : std::strerror(err)),
                err == EACCES ? ErrorKind::kIo : ErrorKind::kNotFound);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(r.path + ": cannot stat: " + std::strerror(errno), ErrorKind::kIo);
  if (!S_ISREG(st.st_mode)) throw Error(r.path + ": not a regular file any more", ErrorKind::kNotFound);
  if (st.st_size != r.size || mtime_ns_of(st) != r.mtime_ns)
    throw Error(r.path + ": changed since it was indexed (size or modification time)", ErrorKind::kNotFound);
  if (st.st_size > kMaxImageFileBytes)
    throw Error(r.path + ": " + std::to_string(st.st_size) + " bytes, more than the limit of " +
                    std::to_string(kMaxImageFileBytes),
                ErrorKind::kTooLarge);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(r.path + ": cannot read: " + std::strerror(errno), ErrorKind::kIo);
    if (n == 0) throw Error(r.path + ": shorter than when it was indexed", ErrorKind::kNotFound);
    got += static_cast<size_t>(n);
  }
  return data;
}

}  // namespace

ImageIndex::ImageIndex(ImageIndex&&) noexcept = default;
ImageIndex& ImageIndex::operator=(ImageIndex&&) noexcept = default;
ImageIndex::~ImageIndex() = default;

ImageIndex ImageIndex::open(const std::string& index_dir, const OpenOptions& options) {
  if (options.rerank < -1 || options.rerank > kMaxRerank)
    throw Error("rerank = " + std::to_string(options.rerank) + ": expected 0.." + std::to_string(kMaxRerank));
  // The manifest names one generation; its files are opened by their generation's names, so the
  // result is always one generation whole. A writer keeps the files of the generation before the
  // current one, so they vanish only when a second newer generation is published while we read:
  // then the manifest names a newer generation, and we read that one instead.
  constexpr int kAttempts = 8;
  for (int attempt = 1;; ++attempt) {
    ImageIndex index;
    index.dir_ = index_dir;
    index.manifest_ = read_manifest(index_dir);
    const Manifest& m = index.manifest_;
    try {
      index.records_ = std::make_unique<GenerationRecords>(GenerationRecords::open(index_dir, m.chunks));
      index.faiss_ = read_faiss(index_dir + "/" + m.faiss_file, m.params, m.dim, m.count, options.mmap);
      index.rerank_ = options.rerank >= 0 ? options.rerank : m.params.rerank;
      if (index.rerank_ > 0)  // mapped, not read: only the candidates' rows are touched
        index.embeddings_ = std::make_unique<GenerationRows>(
            GenerationRows::open(index_dir, m.chunks, m.dim, nullptr, RowAccess::kRandom));
      return index;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound || attempt == kAttempts) throw;
      // Gone because a newer generation replaced it, or missing from the current one (damage)?
      if (read_manifest(index_dir).generation == m.generation)
        throw Error(std::string(e.what()) + " (the file of generation " + std::to_string(m.generation) +
                        " that the manifest names is missing)",
                    ErrorKind::kNotFound);
    }
  }
}

FileRecord ImageIndex::record(int64_t id) const {
  if (id < 0 || id >= size())
    throw Error("image id " + std::to_string(id) + ": expected 0.." + std::to_string(size() - 1));
  return records_->record(id);
}

std::string ImageIndex::read_image(int64_t id) const {
  const FileRecord r = record(id);
  std::string shard, member;
  if (manifest_.source.kind == "shards" && split_member_record_path(r.path, &shard, &member)) {
    // The shard must still be a regular file (not a link, FIFO or device) with its recorded mtime.
    struct stat st {};
    if (::lstat(shard.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || mtime_ns_of(st) != r.mtime_ns)
      throw Error(shard + ": gone, not a regular file, or changed since it was indexed", ErrorKind::kNotFound);
    std::string data = data::read_tar_member(shard, member);
    if (static_cast<int64_t>(data.size()) != r.size)
      throw Error(r.path + ": changed since it was indexed (size)", ErrorKind::kNotFound);
    return data;
  }
  return read_recorded_file(r);
}

std::vector<Hit> ImageIndex::search(const float* query, int k) const {
  if (k < 1) throw Error("k = " + std::to_string(k) + ": expected at least 1");
  std::vector<float> q(query, query + dim());
  double norm = 0;
  for (float v : q) norm += double(v) * v;
  if (!(norm > 0) || !std::isfinite(norm)) throw Error("the query embedding is zero or not finite");
  for (float& v : q) v = static_cast<float>(v / std::sqrt(norm));
  // With re-ranking, FAISS proposes the top `rerank_` candidates (approximate scores from
  // compressed codes) and the stored embeddings decide their order by exact cosine.
  const int64_t kk = std::min<int64_t>(std::max(k, rerank_), size());
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
    if (ids[i] >= size())
      throw Error(dir_ + ": FAISS returned the id " + std::to_string(ids[i]) + ", the index has " +
                      std::to_string(size()) + " rows",
                  ErrorKind::kInternal);
    hits.push_back({ids[i], scores[i], {}});
  }
  if (rerank_ > 0) {
    // The candidates' rows are scattered over the chunks: ask for all of them before reading any,
    // so that on a cold file they arrive in one round of parallel reads.
    std::vector<int64_t> candidates;
    candidates.reserve(hits.size());
    for (const Hit& h : hits) candidates.push_back(h.id);
    embeddings_->will_need(candidates);
    std::vector<float> row(static_cast<size_t>(dim()));
    for (Hit& h : hits) {
      embeddings_->read(h.id, 1, row.data());
      double dot = 0;
      for (int j = 0; j < dim(); ++j) dot += double(q[static_cast<size_t>(j)]) * row[j];
      h.score = static_cast<float>(dot);
    }
    std::sort(hits.begin(), hits.end(),
              [](const Hit& a, const Hit& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; });
    if (hits.size() > static_cast<size_t>(k)) hits.resize(static_cast<size_t>(k));
  }
  for (Hit& h : hits) h.path = records_->record(h.id).path;  // the k returned, not every candidate
  return hits;
}

std::vector<Hit> ImageIndex::search(const torch::Tensor& query, int k) const {
  const torch::Tensor q = query.to(torch::kCPU, torch::kFloat).contiguous().reshape({-1});
  if (q.numel() != dim())
    throw Error("the query embedding has " + std::to_string(q.numel()) + " values, the index " + std::to_string(dim()));
  return search(q.data_ptr<float>(), k);
}

}  // namespace clip::index
