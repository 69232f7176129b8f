// The metadata of one index generation, read on demand: opening checks every line of every chunk's
// metadata file as read_metadata does, but keeps only where each live row's line starts (8 bytes a
// row; the records with their strings took ~100 bytes and more, 1 GB at 10M rows). A row's record
// is parsed from its line when asked for (a search: its k hits).
//
// The text stays reachable for as long as this object lives, even after an update removes the
// files: a small file is held in memory, a large one is mapped (the mapping keeps the file), so
// an open reader keeps its whole generation as before. Small files are read rather than mapped so
// that an index of many small chunks (256 rows a chunk by default) does not spend one memory map a
// chunk (the kernel allows ~65k a process; re-ranking maps the embeddings files too).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "clip/index.h"

namespace clip::index {

class GenerationRecords {
 public:
  // Reads and checks `chunks`' metadata files in `dir`: throws clip::Error naming the file and line
  // (kNotFound when a file is gone), as read_chunk_records does.
  static GenerationRecords open(const std::string& dir, const std::vector<ChunkEntry>& chunks);
  GenerationRecords() = default;
  GenerationRecords(GenerationRecords&& other) noexcept = default;
  GenerationRecords& operator=(GenerationRecords&& other) noexcept = default;
  GenerationRecords(const GenerationRecords&) = delete;
  GenerationRecords& operator=(const GenerationRecords&) = delete;

  int64_t count() const { return static_cast<int64_t>(line_start_.size()); }
  // The record of image id `id` (0 <= id < count(), not checked here: ImageIndex checks).
  FileRecord record(int64_t id) const;

 private:
  // One chunk's metadata text: held (small files) or mapped (large ones).
  class Text {
   public:
    Text() = default;
    static Text read(const std::string& path, uint64_t max_bytes);
    Text(Text&& other) noexcept;
    Text& operator=(Text&& other) noexcept;
    Text(const Text&) = delete;
    Text& operator=(const Text&) = delete;
    ~Text();
    std::string_view view() const { return map_ ? std::string_view(static_cast<const char*>(map_), map_bytes_) : held_; }
    // After the checking pass: lets the mapped pages go and asks for no read-ahead from now on
    // (rows are then read one line at a time).
    void done_with_pass() const;

   private:
    std::string held_;
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
  };

  std::vector<Text> texts_;
  std::vector<std::string> paths_;        // per chunk: its metadata file (for messages)
  std::vector<int64_t> first_;            // first_[c]: the id of chunk c's first live row
  std::vector<uint64_t> line_start_;      // per id: where its line starts in its chunk's text
};

}  // namespace clip::index
