#include "index/parts.h"

#include <filesystem>
#include <map>
#include <regex>

#include "clip/error.h"
#include "index/chunk_files.h"
#include "index/file_hash.h"
#include "index/index_folder.h"
#include "index/manifest.h"
#include "util/file_io.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clip::index {
namespace {

const std::regex kPartName(R"(rank-(\d{1,7})-of-(\d{1,7}))");
const std::regex kAssembledChunk(R"(chunk-\d{1,18}-\d{1,18}\.(npy|jsonl)(\.tmp\.\d+)?)");
constexpr uint64_t kMaxDoneBytes = uint64_t{1} << 30;

// A finished part: its state and done files, read and checked.
struct Part {
  std::string dir;
  json state;
  std::vector<ChunkEntry> chunks;
  std::vector<SkippedFile> skipped;
  std::vector<ShardState> shards;
  int64_t indexed = 0, embedded = 0;
};

json read_json(const std::string& path, uint64_t max_bytes) {
  try {
    return json::parse(util::read_file(path, max_bytes));
  } catch (const json::parse_error& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

Part read_part(const std::string& dir) {
  Part p;
  p.dir = dir;
  p.state = read_json(dir + "/state.json", 1 << 20);
  const std::string done_path = dir + "/" + kPartDoneName;
  const json done = read_json(done_path, kMaxDoneBytes);
  if (!done.is_object() || !done.contains("chunks") || !done.contains("skipped") || !done.contains("shards") ||
      !done.contains("indexed") || !done.contains("embedded") || !done["indexed"].is_number_integer() ||
      !done["embedded"].is_number_integer())
    throw Error(done_path + ": expected chunks, skipped, shards, indexed and embedded");
  p.chunks = chunks_from_json(done["chunks"], done_path);
  p.skipped = skipped_from_json(done["skipped"], done_path);
  p.shards = shards_from_json(done["shards"], done_path);
  p.indexed = done["indexed"].get<int64_t>();
  p.embedded = done["embedded"].get<int64_t>();
  return p;
}

// The state field that differs between two parts, or "" when they agree on everything but their rank.
std::string differing_field(const json& a, const json& b) {
  for (const char* key : {"model_path", "model_config", "dim", "storage"})
    if (a.value(key, json()) != b.value(key, json())) return key;
  const json ea = a.value("extra", json::object()), eb = b.value("extra", json::object());
  for (const char* key : {"precision", "source", "params", "world_size", "batch", "listing"})
    if (ea.value(key, json()) != eb.value(key, json())) return key;
  return "";
}

std::string describe_difference(const std::string& field) {
  if (field == "model_path" || field == "model_config" || field == "dim" || field == "precision")
    return "were embedded by another model (" + field + ")";
  if (field == "storage") return "store embeddings as another type";
  if (field == "source") return "describe another source";
  if (field == "params") return "were given other index parameters (--index-type and its flags)";
  if (field == "batch") return "were given another --batch (it decides the shares and the batches)";
  if (field == "listing") return "listed the source differently (it changed between the ranks' runs; rerun them all)";
  return "differ in " + field;
}

}  // namespace

std::string part_dir(const std::string& index_dir, int rank, int world) {
  return index_dir + "/parts/rank-" + std::to_string(rank) + "-of-" + std::to_string(world);
}

json listing_summary(const SourceListing& listing) {
  std::string all;
  for (const std::string& f : listing.files) all += f + '\n';
  all += '\n';
  for (const SkippedFile& m : listing.missing) all += m.path + '\n';
  return {{"files", listing.files.size()}, {"missing", listing.missing.size()}, {"sha256", sha256_hex(all)}};
}

BuildReport report_of_done_part(const std::string& done_path) {
  const Part p = read_part(fs::path(done_path).parent_path().string());
  BuildReport r;
  r.indexed = p.indexed;
  r.embedded = p.embedded;
  r.reused = p.indexed - p.embedded;
  r.skipped = p.skipped;
  return r;
}

void remove_assembled_chunks(const std::string& part) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(part, ec))
    if (std::regex_match(entry.path().filename().string(), kAssembledChunk)) fs::remove(entry.path(), ec);
}

BuildReport merge_index_parts(const std::string& index_dir, const NoteCallback& note) {
  std::error_code ec;
  if (!fs::is_directory(index_dir + "/parts", ec))
    throw Error(index_dir + ": no parts to merge (expected " + index_dir +
                    "/parts/rank-R-of-W folders written by `clip index build` with RANK and WORLD_SIZE set)",
                ErrorKind::kNotFound);
  if (util::file_exists(index_dir + "/" + kManifestName))
    throw Error(index_dir + ": already holds an index; its parts were merged (remove the folder to rebuild)");
  FolderLock lock(index_dir);
  // The parts present, by world size and rank.
  std::map<int, std::map<int, std::string>> found;
  for (const auto& entry : fs::directory_iterator(index_dir + "/parts", ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && std::regex_match(name, m, kPartName))
      found[std::stoi(m[2])][std::stoi(m[1])] = entry.path().string();
  }
  if (found.empty()) throw Error(index_dir + "/parts: holds no rank-R-of-W part", ErrorKind::kNotFound);
  if (found.size() > 1)
    throw Error(index_dir + "/parts: holds parts of builds with " + std::to_string(found.begin()->first) + " and " +
                std::to_string(found.rbegin()->first) +
                " ranks; remove the parts of the build you do not want (or the whole folder)");
  const int world = found.begin()->first;
  const auto& ranks = found.begin()->second;
  std::vector<Part> parts;
  for (int r = 0; r < world; ++r) {
    const auto it = ranks.find(r);
    if (it == ranks.end())
      throw Error(index_dir + ": rank " + std::to_string(r) + " of " + std::to_string(world) +
                      " has not started (no " + part_dir(index_dir, r, world) + "); run it, then merge",
                  ErrorKind::kNotFound);
    if (!util::file_exists(it->second + "/" + kPartDoneName))
      throw Error(index_dir + ": rank " + std::to_string(r) + " of " + std::to_string(world) +
                      " has not finished (" + it->second + " has no " + kPartDoneName +
                      "); run it again (RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(world) +
                      ": it continues from its finished chunks), then merge",
                  ErrorKind::kNotFound);
    parts.push_back(read_part(it->second));
    const std::string differs = differing_field(parts.front().state, parts.back().state);
    if (!differs.empty())
      throw Error(index_dir + ": the parts of rank 0 and rank " + std::to_string(r) + " " +
                  describe_difference(differs) + "; refusing to merge them (rerun rank " + std::to_string(r) +
                  " as rank 0 was run)");
  }
  // Generation 1 from the parts' chunks, in rank order.
  Manifest m;
  m.generation = 1;
  const std::string state_path = parts.front().dir + "/state.json";
  try {
    const json& state = parts.front().state;
    const json& extra = state.at("extra");
    m.model = {state.at("model_path").get<std::string>(), state.at("model_config").dump(2),
               extra.at("precision").get<std::string>()};
    m.source = {extra.at("source").at("kind").get<std::string>(), extra.at("source").at("path").get<std::string>(),
                extra.at("source").at("csv_column").get<std::string>()};
    m.storage = storage_from_name(state.at("storage").get<std::string>());
    m.dim = state.at("dim").get<int>();
    m.params = params_from_json(extra.at("params"), state_path);
  } catch (const json::exception& e) {
    throw Error(state_path + ": not the state of a part: " + e.what());
  }
  if (m.dim < 1 || m.dim > kMaxDim) throw Error(state_path + ": dim " + std::to_string(m.dim) + " is not usable");
  m.params.validate_for(m.dim);
  std::vector<SkippedFile> skipped;
  BuildReport report;
  std::map<std::string, std::string> moves;  // renamed in once the FAISS index is built
  int64_t number = 0;
  for (const Part& p : parts) {
    for (const ChunkEntry& c : p.chunks) {
      const std::string stem = chunk_stem(index_dir + "/chunk", 1, number++);
      ChunkEntry moved = c;
      moved.embeddings = fs::path(stem).filename().string() + ".npy";
      moved.metadata = fs::path(stem).filename().string() + ".jsonl";
      // A merge interrupted while renaming left some files in the index already.
      for (const auto& [from, to] : {std::pair{c.embeddings, moved.embeddings}, std::pair{c.metadata, moved.metadata}})
        if (util::file_exists(p.dir + "/" + from)) moves[to] = p.dir + "/" + from;
      m.chunks.push_back(std::move(moved));
    }
    skipped.insert(skipped.end(), p.skipped.begin(), p.skipped.end());
    m.shards.insert(m.shards.end(), p.shards.begin(), p.shards.end());
    report.indexed += p.indexed;
    report.embedded += p.embedded;
  }
  if (note) note("merging " + std::to_string(world) + " parts: " + std::to_string(report.indexed) + " rows");
  report.reused = report.indexed - report.embedded;
  report.skipped = skipped;
  report.generation = 1;
  publish_generation(index_dir, std::move(m), skipped, nullptr, moves);
  return report;
}

}  // namespace clip::index
