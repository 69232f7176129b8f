// Embeddings computed before this run, found by file: the previous generation's rows and the
// finished chunks of an interrupted run (INDEX/work/). This is what makes `update` embed only new
// and changed files and lets an interrupted build resume without redoing finished work.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "clip/index.h"
#include "index/file_hash.h"

namespace clip::index {

class EmbeddingCache {
 public:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  explicit EmbeddingCache(int dim) : dim_(dim) {}
  int dim() const { return dim_; }

  // Adds a row; a later row for the same path replaces the earlier one.
  void add(const FileRecord& record, const float* embedding);
  // The row of `path` when its size and mtime are unchanged, else kNone.
  size_t find_unchanged(const std::string& path, const FileStat& stat) const;
  // A row of a file with this content (any path), else kNone.
  size_t find_by_hash(const std::string& sha256) const;
  const float* embedding(size_t row) const { return pool_.data() + row * dim_; }
  const FileRecord& record(size_t row) const { return records_[row]; }

 private:
  int dim_;
  std::vector<float> pool_;
  std::vector<FileRecord> records_;
  std::unordered_map<std::string, size_t> by_path_, by_hash_;
};

// Adds the rows of an index generation (its embeddings .npy and metadata), checking their shapes.
void load_generation(EmbeddingCache& cache, const std::string& index_dir, const Manifest& manifest);

// The work folder of an interrupted run: created (with a note of the model) when absent; its
// finished chunks are added to the cache when they were made by the same model, else the folder
// is emptied. Returns the number of rows loaded and sets *next_chunk to the next free chunk number.
// `note` (when set) hears of discarded work and of damaged chunks, which are skipped.
int64_t open_work_dir(EmbeddingCache& cache, const std::string& work_dir, const ModelIdentity& model, int* next_chunk,
                      const NoteCallback& note);

// Writes one finished chunk: the embeddings, then the records (whose presence marks it complete).
void write_work_chunk(const std::string& work_dir, int number, const std::vector<FileRecord>& records,
                      const std::vector<float>& embeddings, int dim);

}  // namespace clip::index
