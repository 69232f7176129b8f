// The index folder's files: manifest.json (written last, names one generation's files), the
// per-row metadata (JSON lines) and the list of skipped files. See docs/search.md.
#pragma once

#include <string>
#include <vector>

#include "clip/index.h"

namespace clip::index {

inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kModelConfigName = "model-config.json";
inline constexpr int kFormatVersion = 1;
// Bounds on what a manifest may claim, checked before anything is sized from it.
inline constexpr int kMaxDim = 1 << 16;
inline constexpr int64_t kMaxCount = int64_t{1} << 36;
inline constexpr int kMaxRerank = 1 << 16;  // candidates re-scored per query
inline constexpr uint64_t kMaxManifestBytes = uint64_t{1} << 30;  // a shard list of millions fits

// The largest metadata file `count` rows can make (a line is a path of at most 4096 bytes,
// written as JSON, plus fixed fields), so that a damaged file is refused before it is read.
uint64_t max_metadata_bytes(int64_t count);
// The generation's rows (INDEX/<metadata file>), checked against the manifest's count; throws
// clip::Error naming the file (kind kNotFound when the file is gone).
std::vector<FileRecord> read_metadata(const std::string& index_dir, const Manifest& m);

// Atomic write of INDEX/manifest.json.
void write_manifest(const std::string& index_dir, const Manifest& m);

// One JSON object a line, in row order: {"path", "size", "mtime_ns", "sha256"}.
std::string records_to_jsonl(const std::vector<FileRecord>& records);
// Throws clip::Error naming `where` and the line for malformed content.
std::vector<FileRecord> records_from_jsonl(const std::string& text, const std::string& where);

// {"path", "reason"} a line.
std::string skipped_to_jsonl(const std::vector<SkippedFile>& skipped);
// Throws clip::Error naming `where` and the line for malformed content.
std::vector<SkippedFile> skipped_from_jsonl(const std::string& text, const std::string& where);

}  // namespace clip::index
