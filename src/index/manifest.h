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
