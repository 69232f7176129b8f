// The index folder's files: manifest.json (written last, names one generation's files), the
// per-row metadata (JSON lines) and the list of skipped files. See docs/search.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "clip/index.h"

namespace clip::index {

inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kModelConfigName = "model-config.json";
inline constexpr int kFormatVersion = 2;  // 1: one embeddings and one metadata file a generation
// Bounds on what a manifest may claim, checked before anything is sized from it.
inline constexpr int kMaxDim = 1 << 16;
inline constexpr int64_t kMaxCount = int64_t{1} << 36;
inline constexpr int kMaxRerank = 1 << 16;  // candidates re-scored per query
inline constexpr uint64_t kMaxManifestBytes = uint64_t{1} << 30;  // a shard list of millions fits

// The longest metadata line: {"path":…,"size":…,"mtime_ns":…,"sha256":…} with 4096 path bytes as
// \u00XX escapes at worst, about 150 bytes of fields and numbers; doubled for slack.
inline constexpr uint64_t kMaxMetadataLineBytes = 2 * (6 * 4096 + 256);
// The largest metadata file `count` rows can make (a line is a path of at most 4096 bytes,
// written as JSON, plus fixed fields), so that a damaged file is refused before it is read.
uint64_t max_metadata_bytes(int64_t count);
// The generation's rows (its chunks' metadata files, less the dropped rows), in id order; throws
// clip::Error naming the file (kind kNotFound when a file is gone).
std::vector<FileRecord> read_metadata(const std::string& index_dir, const Manifest& m);
// One line of a metadata file, parsed and checked (path, size, mtime_ns, sha256); throws
// clip::Error naming `at` ("FILE:LINE").
FileRecord record_from_jsonl_line(std::string_view line, const std::string& at);
// Every row of one chunk's metadata file, dropped ones included, checked against its row count.
std::vector<FileRecord> read_chunk_records(const std::string& index_dir, const ChunkEntry& chunk);
// The rows of one chunk the generation uses (its metadata less the dropped rows), in id order.
std::vector<FileRecord> read_live_chunk_records(const std::string& index_dir, const ChunkEntry& chunk);

// Pieces of the manifest, also written by the ranks of a distributed build (their parts' state
// and done files). The readers validate as read_manifest does and name `where` on any mismatch.
nlohmann::json params_to_json(const IndexParams& p);
IndexParams params_from_json(const nlohmann::json& index, const std::string& where);  // validated
nlohmann::json source_to_json(const Source& s);
nlohmann::json chunks_to_json(const std::vector<ChunkEntry>& chunks);
nlohmann::json shards_to_json(const std::vector<ShardState>& shards);
std::vector<ChunkEntry> chunks_from_json(const nlohmann::json& chunks, const std::string& where);
std::vector<ShardState> shards_from_json(const nlohmann::json& shards, const std::string& where);
nlohmann::json skipped_to_json(const std::vector<SkippedFile>& skipped);
std::vector<SkippedFile> skipped_from_json(const nlohmann::json& skipped, const std::string& where);

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
