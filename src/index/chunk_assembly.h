// Choosing the chunks of a new generation (docs/search.md, "Storage"). The candidates are the
// previous generation's chunks, then the chunks embedded by this run (or by the ranks of a
// distributed build, in rank order). A candidate is kept when at least half of its rows are still
// wanted: its other rows are listed as dropped, and its files are not rewritten (a work chunk's
// files are renamed into the index). The wanted rows no kept chunk holds (new rows from compacted
// chunks) are written from the cache as new chunks. An update that touches a few files therefore
// writes only the chunks of those files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "clip/index.h"
#include "index/embedding_cache.h"
#include "index/file_hash.h"

namespace clip::index {

// Chunk files not yet in the index folder: their name there -> their path now.
using PendingMoves = std::map<std::string, std::string>;

struct CandidateChunk {
  std::string dir;                  // the folder holding its files
  ChunkEntry entry;                 // its files (names in dir), rows, and rows dropped already
  std::vector<FileRecord> records;  // every row of its files
  bool in_index = false;            // a published chunk of the index (else moved in when kept)
};

struct WantedRow {
  std::string path;
  FileStat stat;  // the record must have this size and mtime
};

// Returns the new generation's chunks in row order; the wanted rows come out in the order of the
// kept candidates, then in `wanted` order. Rows the cache does not hold with the wanted size and
// mtime are left out (the caller reports them). New chunk files are written to index_dir as
// chunk-<generation>-<n>; kept work chunks get such names too, but their files are only added to
// `moves` (file name in index_dir -> where it is now), for publish_generation to rename once the
// FAISS index is built (a failure before leaves the work chunks where a rerun finds them).
std::vector<ChunkEntry> assemble_chunks(const std::string& index_dir, int64_t generation,
                                        const std::vector<CandidateChunk>& candidates,
                                        const std::vector<WantedRow>& wanted, const EmbeddingCache& cache,
                                        int chunk_rows, Storage storage, PendingMoves* moves);

}  // namespace clip::index
