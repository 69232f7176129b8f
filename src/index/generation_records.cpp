#include "index/generation_records.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "clip/error.h"
#include "index/manifest.h"
#include "util/file_io.h"

namespace clip::index {
namespace {

// Files up to this size are held in memory; larger ones are mapped.
constexpr uint64_t kHeldBytes = uint64_t{1} << 20;
// No metadata line is shorter: {"path":"","size":0,"mtime_ns":0,"sha256":""} is 46 bytes.
constexpr uint64_t kShortestLineBytes = 40;

// One metadata line parsed and checked; `where` (file and line, or byte) is built only when the
// line is wrong: open checks every line, and a duplicates pass reads every row.
template <typename Where>
FileRecord parse_line(std::string_view line, Where where) {
  try {
    return record_from_jsonl_line(line, "");
  } catch (const Error& e) {
    throw Error(where() + e.what(), e.kind());
  }
}

}  // namespace

GenerationRecords::Text GenerationRecords::Text::read(const std::string& path, uint64_t max_bytes) {
  Text out;
  const util::ReadOnlyFile file(path);  // closed on return: a mapping outlives it
  const uint64_t size = file.size();
  if (size > max_bytes)
    throw Error(path + ": " + std::to_string(size) + " bytes, expected at most " + std::to_string(max_bytes),
                ErrorKind::kTooLarge);
  if (size <= kHeldBytes) {
    out.held_.resize(static_cast<size_t>(size));
    file.read_at(0, out.held_.data(), out.held_.size(), "the metadata");
    return out;
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, file.fd(), 0);
  if (map == MAP_FAILED) throw Error(path + ": cannot map: " + std::strerror(errno), ErrorKind::kIo);
  ::madvise(map, static_cast<size_t>(size), MADV_SEQUENTIAL);  // advice: the checking pass reads it all
  out.map_ = map;
  out.map_bytes_ = static_cast<size_t>(size);
  return out;
}

void GenerationRecords::Text::done_with_pass() const {
  if (!map_) return;
  ::madvise(map_, map_bytes_, MADV_DONTNEED);  // clean file pages: read again when a row is asked for
  ::madvise(map_, map_bytes_, MADV_RANDOM);
}

GenerationRecords::Text::Text(Text&& other) noexcept { *this = std::move(other); }

GenerationRecords::Text& GenerationRecords::Text::operator=(Text&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, map_bytes_);
    held_ = std::move(other.held_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
  }
  return *this;
}

GenerationRecords::Text::~Text() {
  if (map_) ::munmap(map_, map_bytes_);
}

GenerationRecords GenerationRecords::open(const std::string& dir, const std::vector<ChunkEntry>& chunks) {
  GenerationRecords out;
  // The files first: their sizes bound the row count the line starts are sized for (a manifest
  // may claim any count).
  int64_t claimed = 0;
  uint64_t bytes = 0;
  for (const ChunkEntry& c : chunks) {
    out.paths_.push_back(dir + "/" + c.metadata);
    out.texts_.push_back(Text::read(out.paths_.back(), max_metadata_bytes(c.rows)));
    claimed += c.live();
    bytes += out.texts_.back().view().size();
  }
  out.line_start_.reserve(static_cast<size_t>(std::min<uint64_t>(claimed, bytes / kShortestLineBytes + 1)));
  for (size_t k = 0; k < chunks.size(); ++k) {
    const ChunkEntry& c = chunks[k];
    const std::string& path = out.paths_[k];
    const std::string_view all = out.texts_[k].view();
    // Every line is checked (the same rules and messages as read_chunk_records); the live rows'
    // line starts are kept.
    int64_t row = 0;
    size_t next_dropped = 0;
    out.first_.push_back(static_cast<int64_t>(out.line_start_.size()));
    size_t line_number = 0;
    for (size_t start = 0; start <= all.size();) {
      const size_t newline = all.find('\n', start);
      const size_t end = newline == std::string_view::npos ? all.size() : newline;
      ++line_number;
      if (end > start) {
        parse_line(all.substr(start, end - start), [&] { return path + ":" + std::to_string(line_number); });
        if (row >= c.rows)
          throw Error(path + ": more than the " + std::to_string(c.rows) + " rows the manifest says");
        if (next_dropped < c.dropped.size() && c.dropped[next_dropped] == row) ++next_dropped;
        else out.line_start_.push_back(start);
        ++row;
      }
      if (newline == std::string_view::npos) break;
      start = newline + 1;
    }
    if (row != c.rows)
      throw Error(path + ": " + std::to_string(row) + " rows, the manifest says " + std::to_string(c.rows));
    out.texts_[k].done_with_pass();
  }
  out.first_.push_back(static_cast<int64_t>(out.line_start_.size()));
  return out;
}

FileRecord GenerationRecords::record(int64_t id) const {
  // The chunk holding id: the last whose first id is <= id (an empty chunk shares its first id
  // with the next one, and upper_bound passes over it).
  const size_t c = static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), id) - first_.begin()) - 1;
  const std::string_view all = texts_[c].view();
  const size_t start = static_cast<size_t>(line_start_[static_cast<size_t>(id)]);
  const size_t newline = all.find('\n', start);
  const size_t end = newline == std::string_view::npos ? all.size() : newline;
  return parse_line(all.substr(start, end - start), [&] { return paths_[c] + " (byte " + std::to_string(start) + ")"; });
}

}  // namespace clip::index
