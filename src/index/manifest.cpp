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

namespace {

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
  j["source"] = {{"kind", m.source.kind}, {"path", m.source.path}, {"csv_column", m.source.csv_column}};
  j["index"] = params_to_json(m.params);
  j["dim"] = m.dim;
  j["count"] = m.count;
  j["files"] = {{"embeddings", m.embeddings_file},
                {"metadata", m.metadata_file},
                {"faiss", m.faiss_file},
                {"skipped", m.skipped_file}};
  if (m.source.kind == "shards") {
    json shards = json::array();
    for (const ShardState& s : m.shards)
      shards.push_back({{"path", s.path}, {"size", s.size}, {"mtime_ns", s.mtime_ns}});
    j["shards"] = shards;
  }
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
  if (version != kFormatVersion)
    throw Error(where + ": index format version " + std::to_string(version) + ", this program reads version " +
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
    const json shards = field<json>(j, "shards", where);
    if (!shards.is_array()) throw Error(where + ": field \"shards\" is not a list");
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string at = where + " shards[" + std::to_string(i) + "]";
      ShardState s;
      s.path = field<std::string>(shards[i], "path", at);
      s.size = field<int64_t>(shards[i], "size", at);
      s.mtime_ns = field<int64_t>(shards[i], "mtime_ns", at);
      if (s.path.empty() || s.path[0] != '/' || s.size < 0)
        throw Error(at + ": expected an absolute path and a size >= 0");
      m.shards.push_back(std::move(s));
    }
  }
  const json index = field<json>(j, "index", where);
  m.params.kind = index_kind_from_name(field<std::string>(index, "type", where + " index"));
  m.params.nlist = field<int>(index, "nlist", where + " index");
  m.params.nprobe = field<int>(index, "nprobe", where + " index");
  m.params.hnsw_m = field<int>(index, "hnsw_m", where + " index");
  m.params.ef_construction = field<int>(index, "ef_construction", where + " index");
  m.params.ef_search = field<int>(index, "ef_search", where + " index");
  // Added after version 1 was first written: absent in older manifests.
  if (index.contains("pq_m")) m.params.pq_m = field<int>(index, "pq_m", where + " index");
  if (index.contains("train_sample")) m.params.train_sample = field<int64_t>(index, "train_sample", where + " index");
  if (index.contains("rerank")) m.params.rerank = field<int>(index, "rerank", where + " index");
  m.params.validate();
  m.dim = field<int>(j, "dim", where);
  m.count = field<int64_t>(j, "count", where);
  if (m.dim <= 0 || m.dim > kMaxDim || m.count < 0 || m.count > kMaxCount)
    throw Error(where + ": dim " + std::to_string(m.dim) + " and count " + std::to_string(m.count) +
                ": expected dim 1.." + std::to_string(kMaxDim) + " and count 0.." + std::to_string(kMaxCount));
  const json files = field<json>(j, "files", where);
  m.params.validate_for(m.dim);
  m.embeddings_file = file_field(files, "embeddings", where + " files");
  m.metadata_file = file_field(files, "metadata", where + " files");
  m.faiss_file = file_field(files, "faiss", where + " files");
  m.skipped_file = file_field(files, "skipped", where + " files");
  return m;
}

uint64_t max_metadata_bytes(int64_t count) {
  // {"path":…,"size":…,"mtime_ns":…,"sha256":…}: 4096 path bytes as \u00XX escapes at worst,
  // about 150 bytes of fields and numbers; doubled for slack.
  constexpr uint64_t kMaxLine = 2 * (6 * 4096 + 256);
  return static_cast<uint64_t>(count + 1) * kMaxLine;
}

std::vector<FileRecord> read_metadata(const std::string& index_dir, const Manifest& m) {
  const std::string path = index_dir + "/" + m.metadata_file;
  std::vector<FileRecord> records = records_from_jsonl(util::read_file(path, max_metadata_bytes(m.count)), path);
  if (static_cast<int64_t>(records.size()) != m.count)
    throw Error(path + ": " + std::to_string(records.size()) + " rows, the manifest says " + std::to_string(m.count));
  return records;
}

std::string records_to_jsonl(const std::vector<FileRecord>& records) {
  std::string out;
  for (const auto& r : records)
    out += json{{"path", r.path}, {"size", r.size}, {"mtime_ns", r.mtime_ns}, {"sha256", r.sha256}}.dump(
               -1, ' ', false, json::error_handler_t::replace) +
           "\n";
  return out;
}

std::vector<FileRecord> records_from_jsonl(const std::string& text, const std::string& where) {
  std::vector<FileRecord> out;
  for_each_jsonl_line(text, where, [&](const json& j, const std::string& at) {
    FileRecord r;
    r.path = field<std::string>(j, "path", at);
    r.size = field<int64_t>(j, "size", at);
    r.mtime_ns = field<int64_t>(j, "mtime_ns", at);
    r.sha256 = field<std::string>(j, "sha256", at);
    // Empty for imported rows, whose files were never read here.
    if (!r.sha256.empty() && r.sha256.size() != 64) throw Error(at + ": \"sha256\" is not 64 hex digits");
    out.push_back(std::move(r));
  });
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
