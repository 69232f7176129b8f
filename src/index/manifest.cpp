#include "index/manifest.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clip::index {

const char* index_kind_name(IndexKind kind) {
  switch (kind) {
    case IndexKind::kFlat: return "flat";
    case IndexKind::kIvf: return "ivf";
    case IndexKind::kHnsw: return "hnsw";
    case IndexKind::kIvfPq: return "ivfpq";
  }
  return "?";
}

const char* storage_name(Storage s) { return s == Storage::kF16 ? "f16" : "f32"; }

Storage storage_from_name(const std::string& name) {
  if (name == "f32" || name == "fp32" || name == "float32") return Storage::kF32;
  if (name == "f16" || name == "fp16" || name == "float16") return Storage::kF16;
  throw Error("storage \"" + name + "\": expected f32 or f16");
}

IndexKind index_kind_from_name(const std::string& name) {
  if (name == "flat") return IndexKind::kFlat;
  if (name == "ivf") return IndexKind::kIvf;
  if (name == "hnsw") return IndexKind::kHnsw;
  if (name == "ivfpq") return IndexKind::kIvfPq;
  throw Error("index type \"" + name + "\": expected flat, ivf, hnsw or ivfpq");
}

void IndexParams::validate() const {
  auto check = [](const char* name, int value, int lo, int hi) {
    if (value < lo || value > hi)
      throw Error(std::string(name) + " = " + std::to_string(value) + ": expected " + std::to_string(lo) + ".." +
                  std::to_string(hi));
  };
  check("nlist", nlist, 0, 1 << 24);
  check("nprobe", nprobe, 1, 1 << 24);
  check("hnsw M", hnsw_m, 2, 512);
  check("efConstruction", ef_construction, 1, 1 << 16);
  check("efSearch", ef_search, 1, 1 << 16);
  check("pq_m", pq_m, 0, 1 << 12);
  check("rerank", rerank, 0, kMaxRerank);
  if (train_sample < 0 || train_sample > kMaxCount)
    throw Error("train_sample = " + std::to_string(train_sample) + ": expected 0.." + std::to_string(kMaxCount));
}

void IndexParams::validate_for(int dim) const {
  validate();
  if (kind == IndexKind::kIvfPq) {
    const int m = pq_m == 0 ? std::max(1, dim / 8) : pq_m;
    if (dim % m != 0)
      throw Error("pq_m = " + std::to_string(m) + " does not divide the dimension " + std::to_string(dim) +
                  " (each sub-quantizer codes dim / pq_m dimensions)");
  }
}

ModelIdentity identify_model(const Model& model, const std::string& checkpoint_path, Precision precision) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(checkpoint_path, ec);
  if (ec) throw Error(checkpoint_path + ": cannot resolve the model path: " + ec.message());
  return {canonical.string(), config_to_json(model.config()), precision_name(precision)};
}

void check_same_model(const ModelIdentity& index_model, const ModelIdentity& given, const std::string& index_dir) {
  if (index_model.path != given.path)
    throw Error(index_dir + ": the index was built with the model " + index_model.path + ", not " + given.path +
                " (embeddings of different models cannot be compared; leave out --model to use the index's model)");
  if (json::parse(index_model.config_json) != json::parse(given.config_json))
    throw Error(index_dir + ": the model " + given.path +
                " was loaded with another architecture than the index records (" + index_dir + "/" + kModelConfigName +
                "); give the same --config as for the build");
}

json params_to_json(const IndexParams& p) {
  return {{"type", index_kind_name(p.kind)},
          {"nlist", p.nlist},
          {"nprobe", p.nprobe},
          {"hnsw_m", p.hnsw_m},
          {"ef_construction", p.ef_construction},
          {"ef_search", p.ef_search},
          {"pq_m", p.pq_m},
          {"train_sample", p.train_sample},
          {"rerank", p.rerank}};
}

json chunks_to_json(const std::vector<ChunkEntry>& chunks) {
  json out = json::array();
  for (const ChunkEntry& c : chunks)
    out.push_back({{"embeddings", c.embeddings}, {"metadata", c.metadata}, {"rows", c.rows}, {"dropped", c.dropped}});
  return out;
}

json shards_to_json(const std::vector<ShardState>& shards) {
  json out = json::array();
  for (const ShardState& s : shards) out.push_back({{"path", s.path}, {"size", s.size}, {"mtime_ns", s.mtime_ns}});
  return out;
}

json source_to_json(const Source& s) { return {{"kind", s.kind}, {"path", s.path}, {"csv_column", s.csv_column}}; }

namespace {

// Field access that names the file and the field on any mismatch.
template <typename T>
T field(const json& j, const char* name, const std::string& where) {
  if (!j.is_object() || !j.contains(name)) throw Error(where + ": missing field \"" + name + "\"");
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": field \"" + std::string(name) + "\" has the wrong type (" + j.at(name).dump() + ")");
  }
}

// A file name of the generation: a plain name inside the folder, never a path elsewhere.
std::string file_field(const json& j, const char* name, const std::string& where) {
  const std::string f = field<std::string>(j, name, where);
  if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
    throw Error(where + ": field \"" + std::string(name) + "\" = \"" + f +
                "\" is not a file name inside the index folder");
  return f;
}

// Calls visit(object, "FILE:LINE") for every non-empty line of a JSONL text; a line that is not
// JSON is an error naming it.
template <typename Visit>
void for_each_jsonl_line(const std::string& text, const std::string& where, Visit visit) {
  const std::vector<std::string> lines = util::split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const std::string at = where + ":" + std::to_string(i + 1);
    json j;
    try {
      j = json::parse(lines[i]);
    } catch (const json::parse_error& e) {
      throw Error(at + ": not valid JSON: " + e.what());
    }
    visit(j, at);
  }
}

}  // namespace

void write_manifest(const std::string& index_dir, const Manifest& m) {
  json j;
  j["format"] = "clip-index";
  j["version"] = kFormatVersion;
  j["generation"] = m.generation;
  j["model"] = {{"path", m.model.path}, {"config", json::parse(m.model.config_json)}, {"precision", m.model.precision}};
  j["source"] = source_to_json(m.source);
  j["index"] = params_to_json(m.params);
  j["dim"] = m.dim;
  j["count"] = m.count;
  j["storage"] = storage_name(m.storage);
  j["files"] = {{"faiss", m.faiss_file}, {"skipped", m.skipped_file}};
  j["chunks"] = chunks_to_json(m.chunks);
  j["previous_files"] = m.previous_files;
  if (m.source.kind == "shards") j["shards"] = shards_to_json(m.shards);
  util::write_file_atomic(index_dir + "/" + kManifestName, j.dump(2) + "\n");
}

Manifest read_manifest(const std::string& index_dir) {
  const std::string where = index_dir + "/" + kManifestName;
  if (!util::file_exists(where))
    throw Error(index_dir + ": not an index folder (no " + kManifestName + "; build one with `clip index build`)",
                ErrorKind::kNotFound);
  json j;
  try {
    j = json::parse(util::read_file(where, kMaxManifestBytes));
  } catch (const json::parse_error& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (field<std::string>(j, "format", where) != "clip-index") throw Error(where + ": \"format\" is not \"clip-index\"");
  const int version = field<int>(j, "version", where);
  if (version != 1 && version != kFormatVersion)
    throw Error(where + ": index format version " + std::to_string(version) + ", this program reads versions 1 and " +
                std::to_string(kFormatVersion));
  Manifest m;
  m.generation = field<int64_t>(j, "generation", where);
  if (m.generation < 1 || m.generation > (int64_t{1} << 60))
    throw Error(where + ": generation " + std::to_string(m.generation) + ": expected 1.." +
                std::to_string(int64_t{1} << 60));
  const json model = field<json>(j, "model", where);
  m.model.path = field<std::string>(model, "path", where + " model");
  m.model.config_json = field<json>(model, "config", where + " model").dump(2);
  m.model.precision = field<std::string>(model, "precision", where + " model");
  m.model_config_file = index_dir + "/" + kModelConfigName;
  const json source = field<json>(j, "source", where);
  m.source.kind = field<std::string>(source, "kind", where + " source");
  m.source.path = field<std::string>(source, "path", where + " source");
  m.source.csv_column = field<std::string>(source, "csv_column", where + " source");
  if (m.source.kind != "dir" && m.source.kind != "csv" && m.source.kind != "shards" && m.source.kind != "import")
    throw Error(where + ": source kind \"" + m.source.kind + "\": expected \"dir\", \"csv\", \"shards\" or \"import\"");
  if (m.source.path.empty() || m.source.path[0] != '/')
    throw Error(where + ": source path \"" + m.source.path + "\" is not absolute");
  if (m.source.kind != "csv" && !m.source.csv_column.empty())
    throw Error(where + ": source csv_column is set for a source of kind \"" + m.source.kind + "\"");
  if (m.source.kind == "shards") {
    // What `update` compares to decide that a shard need not be read again.
    m.shards = shards_from_json(field<json>(j, "shards", where), where);
  }
  m.params = params_from_json(field<json>(j, "index", where), where + " index");
  m.dim = field<int>(j, "dim", where);
  m.count = field<int64_t>(j, "count", where);
  if (m.dim <= 0 || m.dim > kMaxDim || m.count < 0 || m.count > kMaxCount)
    throw Error(where + ": dim " + std::to_string(m.dim) + " and count " + std::to_string(m.count) +
                ": expected dim 1.." + std::to_string(kMaxDim) + " and count 0.." + std::to_string(kMaxCount));
  const json files = field<json>(j, "files", where);
  m.params.validate_for(m.dim);
  m.faiss_file = file_field(files, "faiss", where + " files");
  m.skipped_file = file_field(files, "skipped", where + " files");
  if (version == 1) {
    // One embeddings file and one metadata file per generation: read as a single chunk.
    const std::string embeddings = file_field(files, "embeddings", where + " files");
    const std::string metadata = file_field(files, "metadata", where + " files");
    if (m.count > 0) m.chunks.push_back({embeddings, metadata, m.count, {}});
    return m;
  }
  m.storage = storage_from_name(field<std::string>(j, "storage", where));
  m.chunks = chunks_from_json(field<json>(j, "chunks", where), where);
  int64_t live = 0;
  for (const ChunkEntry& c : m.chunks) live += c.live();
  if (live != m.count)
    throw Error(where + ": the chunks hold " + std::to_string(live) + " rows, \"count\" says " +
                std::to_string(m.count));
  const json previous = field<json>(j, "previous_files", where);
  if (!previous.is_array()) throw Error(where + ": field \"previous_files\" is not a list");
  for (size_t i = 0; i < previous.size(); ++i) {
    const json one = {{"name", previous[i]}};
    m.previous_files.push_back(file_field(one, "name", where + " previous_files[" + std::to_string(i) + "]"));
  }
  return m;
}

IndexParams params_from_json(const json& index, const std::string& where) {
  IndexParams p;
  p.kind = index_kind_from_name(field<std::string>(index, "type", where));
  p.nlist = field<int>(index, "nlist", where);
  p.nprobe = field<int>(index, "nprobe", where);
  p.hnsw_m = field<int>(index, "hnsw_m", where);
  p.ef_construction = field<int>(index, "ef_construction", where);
  p.ef_search = field<int>(index, "ef_search", where);
  // Added after version 1 was first written: absent in older manifests.
  if (index.contains("pq_m")) p.pq_m = field<int>(index, "pq_m", where);
  if (index.contains("train_sample")) p.train_sample = field<int64_t>(index, "train_sample", where);
  if (index.contains("rerank")) p.rerank = field<int>(index, "rerank", where);
  p.validate();
  return p;
}

std::vector<ChunkEntry> chunks_from_json(const json& chunks, const std::string& where) {
  if (!chunks.is_array()) throw Error(where + ": field \"chunks\" is not a list");
  std::vector<ChunkEntry> out;
  int64_t live = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const std::string at = where + " chunks[" + std::to_string(i) + "]";
    ChunkEntry c;
    c.embeddings = file_field(chunks[i], "embeddings", at);
    c.metadata = file_field(chunks[i], "metadata", at);
    c.rows = field<int64_t>(chunks[i], "rows", at);
    if (c.rows < 1 || c.rows > kMaxCount)
      throw Error(at + ": rows " + std::to_string(c.rows) + ": expected 1.." + std::to_string(kMaxCount));
    c.dropped = field<std::vector<int64_t>>(chunks[i], "dropped", at);
    for (size_t k = 0; k < c.dropped.size(); ++k)
      if (c.dropped[k] < 0 || c.dropped[k] >= c.rows || (k > 0 && c.dropped[k] <= c.dropped[k - 1]))
        throw Error(at + ": \"dropped\" must list increasing row numbers in 0.." + std::to_string(c.rows - 1));
    live += c.live();
    if (live > kMaxCount) throw Error(at + ": the chunks hold more than " + std::to_string(kMaxCount) + " rows");
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<ShardState> shards_from_json(const json& shards, const std::string& where) {
  if (!shards.is_array()) throw Error(where + ": field \"shards\" is not a list");
  std::vector<ShardState> out;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string at = where + " shards[" + std::to_string(i) + "]";
    ShardState s;
    s.path = field<std::string>(shards[i], "path", at);
    s.size = field<int64_t>(shards[i], "size", at);
    s.mtime_ns = field<int64_t>(shards[i], "mtime_ns", at);
    if (s.path.empty() || s.path[0] != '/' || s.size < 0) throw Error(at + ": expected an absolute path and a size >= 0");
    out.push_back(std::move(s));
  }
  return out;
}

json skipped_to_json(const std::vector<SkippedFile>& skipped) {
  json out = json::array();
  for (const SkippedFile& s : skipped) out.push_back({{"path", s.path}, {"reason", s.reason}});
  return out;
}

std::vector<SkippedFile> skipped_from_json(const json& skipped, const std::string& where) {
  if (!skipped.is_array()) throw Error(where + ": field \"skipped\" is not a list");
  std::vector<SkippedFile> out;
  for (size_t i = 0; i < skipped.size(); ++i) {
    const std::string at = where + " skipped[" + std::to_string(i) + "]";
    out.push_back({field<std::string>(skipped[i], "path", at), field<std::string>(skipped[i], "reason", at)});
  }
  return out;
}

uint64_t max_metadata_bytes(int64_t count) {
  return static_cast<uint64_t>(count + 1) * kMaxMetadataLineBytes;
}

std::vector<FileRecord> read_chunk_records(const std::string& index_dir, const ChunkEntry& chunk) {
  const std::string path = index_dir + "/" + chunk.metadata;
  std::vector<FileRecord> records = records_from_jsonl(util::read_file(path, max_metadata_bytes(chunk.rows)), path);
  if (static_cast<int64_t>(records.size()) != chunk.rows)
    throw Error(path + ": " + std::to_string(records.size()) + " rows, the manifest says " + std::to_string(chunk.rows));
  return records;
}

std::vector<FileRecord> read_live_chunk_records(const std::string& index_dir, const ChunkEntry& chunk) {
  std::vector<FileRecord> records = read_chunk_records(index_dir, chunk);
  if (chunk.dropped.empty()) return records;
  std::vector<FileRecord> live;
  live.reserve(records.size() - chunk.dropped.size());
  size_t next_dropped = 0;
  for (int64_t r = 0; r < chunk.rows; ++r) {
    if (next_dropped < chunk.dropped.size() && chunk.dropped[next_dropped] == r) {
      ++next_dropped;
      continue;
    }
    live.push_back(std::move(records[static_cast<size_t>(r)]));
  }
  return live;
}

std::vector<FileRecord> read_metadata(const std::string& index_dir, const Manifest& m) {
  std::vector<FileRecord> out;
  out.reserve(static_cast<size_t>(m.count));
  for (const ChunkEntry& c : m.chunks)
    for (FileRecord& r : read_live_chunk_records(index_dir, c)) out.push_back(std::move(r));
  return out;
}

std::string records_to_jsonl(const std::vector<FileRecord>& records) {
  std::string out;
  for (const auto& r : records)
    out += json{{"path", r.path}, {"size", r.size}, {"mtime_ns", r.mtime_ns}, {"sha256", r.sha256}}.dump(
               -1, ' ', false, json::error_handler_t::replace) +
           "\n";
  return out;
}

namespace {

FileRecord record_from_json(const json& j, const std::string& at) {
  FileRecord r;
  r.path = field<std::string>(j, "path", at);
  r.size = field<int64_t>(j, "size", at);
  r.mtime_ns = field<int64_t>(j, "mtime_ns", at);
  r.sha256 = field<std::string>(j, "sha256", at);
  // Empty for imported rows, whose files were never read here.
  if (!r.sha256.empty() && r.sha256.size() != 64) throw Error(at + ": \"sha256\" is not 64 hex digits");
  return r;
}

}  // namespace

FileRecord record_from_jsonl_line(std::string_view line, const std::string& at) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    throw Error(at + ": not valid JSON: " + e.what());
  }
  return record_from_json(j, at);
}

std::vector<FileRecord> records_from_jsonl(const std::string& text, const std::string& where) {
  std::vector<FileRecord> out;
  for_each_jsonl_line(text, where, [&](const json& j, const std::string& at) { out.push_back(record_from_json(j, at)); });
  return out;
}

std::vector<SkippedFile> skipped_from_jsonl(const std::string& text, const std::string& where) {
  std::vector<SkippedFile> out;
  for_each_jsonl_line(text, where, [&](const json& j, const std::string& at) {
    out.push_back({field<std::string>(j, "path", at), field<std::string>(j, "reason", at)});
  });
  return out;
}

std::string skipped_to_jsonl(const std::vector<SkippedFile>& skipped) {
  std::string out;
  for (const auto& s : skipped)
    out += json{{"path", s.path}, {"reason", s.reason}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return out;
}

}  // namespace clip::index
