#include "index/path_list.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "index/manifest.h"
#include "util/file_io.h"
#include "util/utf8.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clip::index {
namespace {

constexpr size_t kMaxPathBytes = 4096;  // as the metadata of a built index

void check_path(const std::string& path, const std::string& at) {
  if (path.empty()) throw Error(at + ": empty path");
  if (path.size() > kMaxPathBytes)
    throw Error(at + ": a path of " + std::to_string(path.size()) + " bytes, more than " +
                std::to_string(kMaxPathBytes));
  if (!util::is_valid_utf8(path)) throw Error(at + ": the path is not valid UTF-8");
}

// The next line of `file` without its '\n', into `line`; false at the end of the file. A line is
// at most as long as a metadata line can be, so a hostile list cannot make one line take memory.
bool read_line(std::FILE* file, std::string& line, const std::string& at) {
  line.clear();
  int c;
  while ((c = getc_unlocked(file)) != EOF && c != '\n') {
    if (line.size() == kMaxMetadataLineBytes)
      throw Error(at + ": a line longer than " + std::to_string(kMaxMetadataLineBytes) + " bytes");
    line.push_back(static_cast<char>(c));
  }
  if (std::ferror(file)) throw Error(at + ": cannot read the list: " + std::strerror(errno), ErrorKind::kIo);
  return c != EOF || !line.empty();
}

// One line's record: the path (a .txt line, less a trailing '\r'), or a JSONL object's fields.
FileRecord parse_line(std::string line, bool jsonl, const std::string& at) {
  if (line.empty()) throw Error(at + ": empty line (expected one path a line)");
  FileRecord r;
  if (jsonl) {
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw Error(at + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("path") || !j["path"].is_string())
      throw Error(at + ": expected an object with a \"path\" string");
    r.path = j["path"].get<std::string>();
    if (j.contains("size") && j["size"].is_number_integer()) r.size = j["size"].get<int64_t>();
    if (j.contains("mtime_ns") && j["mtime_ns"].is_number_integer()) r.mtime_ns = j["mtime_ns"].get<int64_t>();
    if (j.contains("sha256") && j["sha256"].is_string()) r.sha256 = j["sha256"].get<std::string>();
    if (!r.sha256.empty() && r.sha256.size() != 64) throw Error(at + ": \"sha256\" is not 64 hex digits");
  } else {
    if (line.back() == '\r') line.pop_back();
    r.path = std::move(line);
  }
  check_path(r.path, at);
  return r;
}

}  // namespace

PathList::PathList(const std::string& list, const std::string& csv_column, int64_t expected) : list_(list) {
  const std::string ext = fs::path(list).extension().string();
  format_ = ext == ".csv" ? Format::kCsv : ext == ".jsonl" ? Format::kJsonl : Format::kText;
  struct stat st {};
  if (::stat(list.c_str(), &st) != 0)
    throw Error(list + ": cannot read the path list: " + std::strerror(errno), util::open_error_kind(errno));
  if (!S_ISREG(st.st_mode)) throw Error(list + ": not a regular file", ErrorKind::kIo);
  if (static_cast<uint64_t>(st.st_size) > max_metadata_bytes(expected))
    throw Error(list + ": " + std::to_string(st.st_size) + " bytes, more than " + std::to_string(expected) +
                    " paths can take",
                ErrorKind::kTooLarge);
  int64_t rows = 0;
  if (format_ == Format::kCsv) {
    csv_ = read_csv_paths(list, csv_column);
    for (const CsvPath& p : csv_) check_path(p.path, list + ":" + std::to_string(p.line));
    rows = static_cast<int64_t>(csv_.size());
  } else {
    file_.reset(std::fopen(list.c_str(), "rb"));
    if (!file_) throw Error(list + ": cannot open: " + std::strerror(errno), util::open_error_kind(errno));
    std::string line;
    for (int64_t n = 1; read_line(file_.get(), line, list + ":" + std::to_string(n)); ++n, ++rows)
      parse_line(std::move(line), format_ == Format::kJsonl, list + ":" + std::to_string(n));
    std::rewind(file_.get());
  }
  if (rows != expected)
    throw Error(list + ": " + std::to_string(rows) + " paths, the embeddings hold " + std::to_string(expected) +
                " rows (one path per row, in the order of the chunks)");
}

std::vector<FileRecord> PathList::next(int64_t count) {
  std::vector<FileRecord> records;
  records.reserve(static_cast<size_t>(count));
  if (format_ == Format::kCsv) {
    if (count > static_cast<int64_t>(csv_.size() - csv_next_)) throw Error(list_ + ": fewer paths than rows");
    for (int64_t i = 0; i < count; ++i) records.push_back({std::move(csv_[csv_next_++].path), 0, 0, ""});
    return records;
  }
  std::string line;
  for (int64_t i = 0; i < count; ++i) {
    const std::string at = list_ + ":" + std::to_string(line_ + 1);
    if (!read_line(file_.get(), line, at))
      throw Error(at + ": the list ended early (it changed while being imported)");
    ++line_;
    records.push_back(parse_line(std::move(line), format_ == Format::kJsonl, at));
  }
  return records;
}

}  // namespace clip::index
