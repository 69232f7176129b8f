// Embeddings computed before, found by file: the previous generation's rows and the finished
// chunks of an interrupted run (INDEX/work/). This is what makes `update` embed only new and
// changed files and lets an interrupted build resume without redoing finished work.
//
// Rows already in a chunk file are referenced, not held: the cache keeps their records (path,
// size, mtime, hash) and where the embedding lies, and reads it only when it is reused (a copy of
// known content, or a row moved out of a compacted chunk). Only the rows of the chunk being
// filled are in memory. Not thread-safe for copy_embedding (the finders are: they only read).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "clip/index.h"
#include "index/file_hash.h"
#include "index/mapped_embeddings.h"

namespace clip::index {

class EmbeddingCache {
 public:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  explicit EmbeddingCache(int dim) : dim_(dim) {}
  int dim() const { return dim_; }

  // Adds a row computed by this run (held in memory until seal()); a later row for the same path
  // replaces the earlier one. Rows of this run (and of resumed work chunks) are not found by
  // content: a copy in the same build is embedded in its own batch, as any other build embeds it.
  void add(const FileRecord& record, const float* embedding);
  // The rows add()ed since the last seal are rows 0, 1, ... of this chunk file, just written: they
  // are read from it from now on, and their memory is freed.
  void seal(const std::string& npy_path);
  // Adds the rows of a chunk file (checked to be [records.size(), dim]), less `dropped` (sorted);
  // `by_content`: find_by_hash finds them (the previous generation's rows).
  void add_chunk(const std::string& npy_path, const std::vector<FileRecord>& records,
                 const std::vector<int64_t>& dropped, bool by_content);

  // The row of `path` when its size and mtime are unchanged, else kNone.
  size_t find_unchanged(const std::string& path, const FileStat& stat) const;
  // A row of the previous generation with this content (any path), else kNone.
  size_t find_by_hash(const std::string& sha256) const;
  // The row's embedding (dim floats) into out.
  void copy_embedding(size_t row, float* out) const;
  const FileRecord& record(size_t row) const { return records_[row]; }

 private:
  struct Where {
    int32_t file;  // index into files_, or -1: in pool_
    int64_t row;   // row of the file, or of pool_
  };
  void index_row(size_t row, bool by_content);

  int dim_;
  std::vector<float> pool_;          // rows of the chunk being filled
  std::vector<size_t> pool_rows_;    // the cache rows held in pool_, in order
  std::vector<std::string> files_;   // chunk files rows are read from
  std::vector<FileRecord> records_;
  std::vector<Where> where_;
  std::unordered_map<std::string, size_t> by_path_, by_hash_;
  mutable int32_t open_file_ = -1;   // the last file read, kept mapped
  mutable MappedEmbeddings open_map_;
};

// Adds the live rows of an index generation (its chunks' embeddings and metadata), checking their shapes.
void load_generation(EmbeddingCache& cache, const std::string& index_dir, const Manifest& manifest);

// A finished chunk of this or an interrupted run, in a work folder (INDEX/work, or a rank's part).
struct WorkChunk {
  std::string stem;  // path without .npy / .jsonl
  std::vector<FileRecord> records;
};

// The work folder of an interrupted run: created (with a note of the model and storage) when
// absent; its finished chunks are added to the cache and returned (in number order) when they were
// made by the same model and storage, else the folder is emptied. Sets *next_chunk to the next
// free chunk number. `note` (when set) hears of discarded work and of damaged chunks, which are
// skipped.
// `extra_state` (JSON text, or empty) is more that must match: a rank's share of a distributed build.
std::vector<WorkChunk> open_work_dir(EmbeddingCache& cache, const std::string& work_dir, const ModelIdentity& model,
                                     Storage storage, const std::string& extra_state, int* next_chunk,
                                     const NoteCallback& note);
// Whether the work folder was made with this state (as open_work_dir compares it).
bool work_state_matches(const std::string& work_dir, const ModelIdentity& model, Storage storage, int dim,
                        const std::string& extra_state);

// Writes one finished chunk: the embeddings, then the records (whose presence marks it complete).
WorkChunk write_work_chunk(const std::string& work_dir, int number, const std::vector<FileRecord>& records,
                           const std::vector<float>& embeddings, int dim, Storage storage);

}  // namespace clip::index
