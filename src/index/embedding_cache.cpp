#include "index/embedding_cache.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "index/manifest.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clip::index {

void EmbeddingCache::add(const FileRecord& record, const float* embedding) {
  const size_t row = records_.size();
  records_.push_back(record);
  pool_.insert(pool_.end(), embedding, embedding + dim_);
  by_path_[record.path] = row;
  by_hash_[record.sha256] = row;
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

// Rows of an embeddings .npy matching `records`; throws clip::Error naming the file otherwise.
void add_rows(EmbeddingCache& cache, const std::string& npy_path, const std::vector<FileRecord>& records) {
  const int64_t n = static_cast<int64_t>(records.size());
  // Read no more than the rows it must hold (and a header) can take.
  const uint64_t max_bytes = (uint64_t{1} << 16) + static_cast<uint64_t>(n) * cache.dim() * sizeof(float);
  const util::NpyArray a = util::parse_npy(util::read_file(npy_path, max_bytes), npy_path);
  if (a.dtype != "<f4" || a.shape.size() != 2 || a.shape[0] != n || a.shape[1] != cache.dim())
    throw Error(npy_path + ": expected float32 [" + std::to_string(n) + ", " + std::to_string(cache.dim()) +
                "] embeddings (one row per metadata line)");
  const float* rows = reinterpret_cast<const float*>(a.data.data());
  for (int64_t i = 0; i < n; ++i) cache.add(records[i], rows + i * cache.dim());
}

std::string chunk_stem(const std::string& work_dir, int number) {
  char name[32];
  std::snprintf(name, sizeof name, "chunk-%06d", number);
  return work_dir + "/" + name;
}

}  // namespace

void load_generation(EmbeddingCache& cache, const std::string& index_dir, const Manifest& manifest) {
  add_rows(cache, index_dir + "/" + manifest.embeddings_file, read_metadata(index_dir, manifest));
}

int64_t open_work_dir(EmbeddingCache& cache, const std::string& work_dir, const ModelIdentity& model, int* next_chunk,
                      const NoteCallback& note) {
  const json state = {
      {"model_path", model.path}, {"model_config", json::parse(model.config_json)}, {"dim", cache.dim()}};
  const std::string state_path = work_dir + "/state.json";
  *next_chunk = 0;
  std::error_code ec;
  if (fs::exists(state_path, ec)) {
    json found;
    try {
      found = json::parse(util::read_file(state_path));
    } catch (const json::parse_error&) {
      found = nullptr;
    }
    if (found != state) {
      if (note) note("note: " + work_dir + " holds work of another model; discarding it");
      fs::remove_all(work_dir, ec);
    }
  } else if (fs::exists(work_dir, ec)) {
    fs::remove_all(work_dir, ec);  // a work folder without its state is from a run that never started
  }
  if (!fs::exists(work_dir, ec)) {
    util::create_directories(work_dir, "the work folder");
    util::write_file_atomic(state_path, state.dump(2) + "\n");
    return 0;
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
  int64_t loaded = 0;
  for (const int number : numbers) {
    const std::string stem = chunk_stem(work_dir, number);
    try {
      const std::vector<FileRecord> records = records_from_jsonl(util::read_file(stem + ".jsonl"), stem + ".jsonl");
      add_rows(cache, stem + ".npy", records);
      loaded += static_cast<int64_t>(records.size());
    } catch (const Error& e) {
      // A damaged chunk only costs its recomputation.
      if (note) note(std::string("note: ignoring work chunk: ") + e.what());
    }
    *next_chunk = number + 1;
  }
  return loaded;
}

void write_work_chunk(const std::string& work_dir, int number, const std::vector<FileRecord>& records,
                      const std::vector<float>& embeddings, int dim) {
  const std::string stem = chunk_stem(work_dir, number);
  util::write_npy(stem + ".npy", "<f4", {static_cast<int64_t>(records.size()), dim}, embeddings.data(),
                  embeddings.size() * sizeof(float));
  util::write_file_atomic(stem + ".jsonl", records_to_jsonl(records));
}

}  // namespace clip::index
