#include "index/chunk_assembly.h"

#include <unordered_map>
#include <unordered_set>

#include "index/chunk_files.h"
#include "util/file_io.h"

namespace clip::index {

std::vector<ChunkEntry> assemble_chunks(const std::string& index_dir, int64_t generation,
                                        const std::vector<CandidateChunk>& candidates,
                                        const std::vector<WantedRow>& wanted, const EmbeddingCache& cache,
                                        int chunk_rows, Storage storage, PendingMoves* moves) {
  std::unordered_map<std::string, FileStat> want;
  for (const WantedRow& w : wanted) want.emplace(w.path, w.stat);
  std::unordered_set<std::string> placed;  // paths a kept chunk holds
  std::vector<ChunkEntry> chunks;
  int64_t number = 0;
  const std::string prefix = index_dir + "/chunk";

  for (const CandidateChunk& c : candidates) {
    std::vector<int64_t> dropped;
    std::vector<const std::string*> keeps;
    size_t next_dropped = 0;
    for (int64_t r = 0; r < c.entry.rows; ++r) {
      const bool was_dropped = next_dropped < c.entry.dropped.size() && c.entry.dropped[next_dropped] == r;
      if (was_dropped) ++next_dropped;
      const FileRecord& rec = c.records[static_cast<size_t>(r)];
      const auto w = want.find(rec.path);
      const bool wanted_here = !was_dropped && w != want.end() && w->second.size == rec.size &&
                               w->second.mtime_ns == rec.mtime_ns && !placed.count(rec.path);
      if (wanted_here)
        keeps.push_back(&rec.path);
      else
        dropped.push_back(r);
    }
    if (keeps.empty() || static_cast<int64_t>(keeps.size()) * 2 < c.entry.rows) continue;  // compacted
    for (const std::string* p : keeps) placed.insert(*p);
    ChunkEntry entry = c.entry;
    if (!c.in_index) {
      const std::string stem = chunk_stem(prefix, generation, number++);
      entry = chunk_entry(stem, c.entry.rows);
      (*moves)[entry.embeddings] = c.dir + "/" + c.entry.embeddings;
      (*moves)[entry.metadata] = c.dir + "/" + c.entry.metadata;
    }
    entry.dropped = std::move(dropped);
    chunks.push_back(std::move(entry));
  }

  // The rest, from the cache, in chunks of chunk_rows.
  std::vector<FileRecord> records;
  std::vector<float> rows;
  auto flush = [&] {
    if (records.empty()) return;
    chunks.push_back(write_chunk(chunk_stem(prefix, generation, number++), records, rows.data(), cache.dim(), storage));
    records.clear();
    rows.clear();
  };
  for (const WantedRow& w : wanted) {
    if (placed.count(w.path)) continue;
    const size_t row = cache.find_unchanged(w.path, w.stat);
    if (row == EmbeddingCache::kNone) continue;
    placed.insert(w.path);
    records.push_back(cache.record(row));
    rows.resize(records.size() * static_cast<size_t>(cache.dim()));
    cache.copy_embedding(row, rows.data() + (records.size() - 1) * static_cast<size_t>(cache.dim()));
    if (static_cast<int>(records.size()) >= chunk_rows) flush();
  }
  flush();
  return chunks;
}

}  // namespace clip::index
