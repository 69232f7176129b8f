// Writing one chunk of an index: its embeddings (.npy, float32 or float16 [rows, dim]) and its
// metadata (.jsonl, one record a row). The embeddings are written first and the metadata second,
// each under a temporary name and renamed, so a chunk whose .jsonl exists is complete.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clip/index.h"

namespace clip::index {

// "<prefix>-<generation>-<number>": the stem of a published chunk's two files.
std::string chunk_stem(const std::string& prefix, int64_t generation, int64_t number);

// Streams the rows of one chunk of a known row count into "<stem>.npy" (temporary name until finish).
class ChunkFileWriter {
 public:
  ChunkFileWriter(const std::string& stem, int64_t rows, int dim, Storage storage);
  ~ChunkFileWriter();  // an unfinished chunk's temporary file is removed
  ChunkFileWriter(const ChunkFileWriter&) = delete;
  ChunkFileWriter& operator=(const ChunkFileWriter&) = delete;

  // Appends n rows (n × dim floats), stored as the chunk's storage type.
  void append(const float* rows, int64_t n);
  // Checks that every row came and publishes "<stem>.npy".
  void finish_embeddings();
  // finish_embeddings(), then writes the metadata file "<stem>.jsonl".
  void finish(const std::vector<FileRecord>& records);

 private:
  std::string stem_, tmp_;
  int64_t rows_, written_ = 0;
  int dim_;
  Storage storage_;
  int fd_ = -1;
  std::vector<char> buffer_;
};

// A whole chunk at once: writes stem.npy and stem.jsonl; returns its entry (file names relative to
// the stem's folder).
ChunkEntry write_chunk(const std::string& stem, const std::vector<FileRecord>& records, const float* rows, int dim,
                       Storage storage);

// The entry of a finished chunk at `stem` with `rows` rows (its file names).
ChunkEntry chunk_entry(const std::string& stem, int64_t rows);

// Rounds a row to what `storage` keeps (float16: to the nearest half), so that a row reused from
// memory equals the one read back from its file.
void round_to_storage(float* row, int dim, Storage storage);

}  // namespace clip::index
