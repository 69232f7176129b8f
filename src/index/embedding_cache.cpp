#include "index/embedding_cache.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "index/chunk_files.h"
#include "index/manifest.h"
#include "index/mapped_embeddings.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clip::index {

void EmbeddingCache::index_row(size_t row, bool by_content) {
  by_path_[records_[row].path] = row;
  if (by_content && !records_[row].sha256.empty()) by_hash_[records_[row].sha256] = row;
}

void EmbeddingCache::add(const FileRecord& record, const float* embedding) {
  records_.push_back(record);
  where_.push_back({-1, static_cast<int64_t>(pool_rows_.size())});
  pool_rows_.push_back(records_.size() - 1);
  pool_.insert(pool_.end(), embedding, embedding + dim_);
  index_row(records_.size() - 1, false);
}

void EmbeddingCache::seal(const std::string& npy_path) {
  if (pool_rows_.empty()) return;
  files_.push_back(npy_path);
  const int32_t file = static_cast<int32_t>(files_.size() - 1);
  for (size_t i = 0; i < pool_rows_.size(); ++i) where_[pool_rows_[i]] = {file, static_cast<int64_t>(i)};
  pool_rows_.clear();
  pool_.clear();
  pool_.shrink_to_fit();
}

void EmbeddingCache::add_chunk(const std::string& npy_path, const std::vector<FileRecord>& records,
                               const std::vector<int64_t>& dropped, bool by_content) {
  // The header is checked now (a damaged chunk is refused before anything relies on it); the rows
  // are read when reused.
  MappedEmbeddings::open(npy_path, static_cast<int64_t>(records.size()), dim_);
  files_.push_back(npy_path);
  const int32_t file = static_cast<int32_t>(files_.size() - 1);
  size_t next_dropped = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (next_dropped < dropped.size() && dropped[next_dropped] == static_cast<int64_t>(i)) {
      ++next_dropped;
      continue;
    }
    records_.push_back(records[i]);
    where_.push_back({file, static_cast<int64_t>(i)});
    index_row(records_.size() - 1, by_content);
  }
}

void EmbeddingCache::copy_embedding(size_t row, float* out) const {
  const Where w = where_[row];
  if (w.file < 0) {
    std::copy(pool_.begin() + w.row * dim_, pool_.begin() + (w.row + 1) * dim_, out);
    return;
  }
  if (open_file_ != w.file) {
    open_map_ = MappedEmbeddings::open(files_[static_cast<size_t>(w.file)], -1, dim_);
    open_file_ = w.file;
  }
  if (w.row >= open_map_.count())
    throw Error(files_[static_cast<size_t>(w.file)] + ": holds " + std::to_string(open_map_.count()) +
                " rows, row " + std::to_string(w.row) + " was expected (the file changed during the run)");
  open_map_.read(w.row, 1, out);
}

size_t EmbeddingCache::find_unchanged(const std::string& path, const FileStat& stat) const {
  const auto it = by_path_.find(path);
  if (it == by_path_.end()) return kNone;
  const FileRecord& r = records_[it->second];
  return r.size == stat.size && r.mtime_ns == stat.mtime_ns ? it->second : kNone;
}

size_t EmbeddingCache::find_by_hash(const std::string& sha256) const {
  const auto it = by_hash_.find(sha256);
  return it == by_hash_.end() ? kNone : it->second;
}

namespace {

std::string work_chunk_stem(const std::string& work_dir, int number) {
  char name[32];
  std::snprintf(name, sizeof name, "chunk-%06d", number);
  return work_dir + "/" + name;
}

}  // namespace

void load_generation(EmbeddingCache& cache, const std::string& index_dir, const Manifest& manifest) {
  for (const ChunkEntry& c : manifest.chunks)
    cache.add_chunk(index_dir + "/" + c.embeddings, read_chunk_records(index_dir, c), c.dropped, true);
}

namespace {

json work_state(const ModelIdentity& model, Storage storage, int dim, const std::string& extra_state) {
  json state = {{"model_path", model.path},
                {"model_config", json::parse(model.config_json)},
                {"dim", dim},
                {"storage", storage_name(storage)}};
  if (!extra_state.empty()) state["extra"] = json::parse(extra_state);
  return state;
}

// The state a work folder records; null when it has none or an unreadable one.
json recorded_state(const std::string& work_dir) {
  try {
    return json::parse(util::read_file(work_dir + "/state.json", 1 << 20));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

bool work_state_matches(const std::string& work_dir, const ModelIdentity& model, Storage storage, int dim,
                        const std::string& extra_state) {
  return recorded_state(work_dir) == work_state(model, storage, dim, extra_state);
}

std::vector<WorkChunk> open_work_dir(EmbeddingCache& cache, const std::string& work_dir, const ModelIdentity& model,
                                     Storage storage, const std::string& extra_state, int* next_chunk,
                                     const NoteCallback& note) {
  const json state = work_state(model, storage, cache.dim(), extra_state);
  const std::string state_path = work_dir + "/state.json";
  *next_chunk = 0;
  std::error_code ec;
  if (fs::exists(state_path, ec)) {
    if (recorded_state(work_dir) != state) {
      if (note) note("note: " + work_dir + " holds work of another model, storage or source; discarding it");
      fs::remove_all(work_dir, ec);
    }
  } else if (fs::exists(work_dir, ec)) {
    fs::remove_all(work_dir, ec);  // a work folder without its state is from a run that never started
  }
  if (!fs::exists(work_dir, ec)) {
    util::create_directories(work_dir, "the work folder");
    util::write_file_atomic(state_path, state.dump(2) + "\n");
    return {};
  }
  // Chunks in number order, so that a file embedded twice keeps its latest row.
  std::vector<int> numbers;
  for (const auto& entry : fs::directory_iterator(work_dir, ec)) {
    const std::string name = entry.path().filename().string();
    int number = 0;
    char tail[8] = {0};
    if (std::sscanf(name.c_str(), "chunk-%d.%7s", &number, tail) == 2 && std::strcmp(tail, "jsonl") == 0)
      numbers.push_back(number);
  }
  std::sort(numbers.begin(), numbers.end());
  std::vector<WorkChunk> loaded;
  for (const int number : numbers) {
    const std::string stem = work_chunk_stem(work_dir, number);
    try {
      std::vector<FileRecord> records = records_from_jsonl(util::read_file(stem + ".jsonl"), stem + ".jsonl");
      if (records.empty()) throw Error(stem + ".jsonl: an empty chunk");
      cache.add_chunk(stem + ".npy", records, {}, false);
      loaded.push_back({stem, std::move(records)});
    } catch (const Error& e) {
      // A damaged chunk only costs its recomputation.
      if (note) note(std::string("note: ignoring work chunk: ") + e.what());
    }
    *next_chunk = number + 1;
  }
  return loaded;
}

WorkChunk write_work_chunk(const std::string& work_dir, int number, const std::vector<FileRecord>& records,
                           const std::vector<float>& embeddings, int dim, Storage storage) {
  const std::string stem = work_chunk_stem(work_dir, number);
  write_chunk(stem, records, embeddings.data(), dim, storage);
  return {stem, records};
}

}  // namespace clip::index
