// The path list of `clip index import` (one row per embedding, in chunk order), handed out a
// chunk's worth at a time so that a list of 10^7-10^8 paths is never held whole: a .txt (one path
// a line), a .jsonl (objects with "path" and optionally "size", "mtime_ns", "sha256", as
// `clip index export` writes them) or a .csv (a column of paths; read whole, since its quoted
// fields may span lines).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "clip/index.h"
#include "index/csv_paths.h"

namespace clip::index {

class PathList {
 public:
  // Reads the list through once, checking every line (a path: non-empty, at most 4096 bytes,
  // UTF-8; a JSONL line: an object with a "path" string), and refuses it unless it holds exactly
  // `expected` rows. Throws clip::Error naming the file and line.
  PathList(const std::string& list, const std::string& csv_column, int64_t expected);

  // The next `count` rows' records, read again from the file (a list that changed since the
  // first reading is refused).
  std::vector<FileRecord> next(int64_t count);

 private:
  enum class Format { kText, kJsonl, kCsv };
  std::string list_;
  Format format_ = Format::kText;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};  // text and JSONL
  int64_t line_ = 0;                                                              // lines read so far
  std::vector<CsvPath> csv_;
  size_t csv_next_ = 0;
};

}  // namespace clip::index
