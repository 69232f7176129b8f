#include "index/index_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>
#include <set>

#include "clip/error.h"
#include "index/faiss_store.h"
#include "index/manifest.h"
#include "index/generation_rows.h"
#include "util/file_io.h"
#include "util/npy.h"

#include <faiss/Index.h>

namespace fs = std::filesystem;

namespace clip::index {
namespace {

// The files an index folder may hold; anything else means the folder is not ours to write.
// embeddings-/metadata- files are those of format version 1 (one of each per generation).
const std::regex kGenerationFile(R"((embeddings|metadata|faiss|skipped)-(\d{1,18})\.(npy|jsonl|index)(\.tmp\.\d+)?)");
const std::regex kChunkFile(R"(chunk-\d{1,18}-\d{1,18}\.(npy|jsonl)(\.tmp\.\d+)?)");

bool is_index_file(const std::string& name) {
  return name == kManifestName || name == kModelConfigName || name == ".lock" || name == "work" || name == "parts" ||
         std::regex_match(name, kGenerationFile) || std::regex_match(name, kChunkFile) ||
         name.find(".tmp.") != std::string::npos;
}

}  // namespace

FolderLock::FolderLock(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot open the lock file: " + std::strerror(errno), ErrorKind::kIo);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    throw Error(dir + ": another `clip index` run is writing this index (it holds " + path + ")");
  }
}

FolderLock::~FolderLock() { ::close(fd_); }

void prepare_new_index_folder(const std::string& dir) {
  util::create_directories(dir, "the index folder");
  if (util::file_exists(dir + "/" + kManifestName))
    throw Error(dir +
                ": already holds an index (update it with `clip index update`, or remove the folder to "
                "rebuild)");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!is_index_file(name))
      throw Error(dir + ": the folder is not empty and not an index (found \"" + name +
                  "\"); give a new or empty folder");
  }
}

void remove_unused_files(const std::string& dir, const Manifest* current) {
  std::set<std::string> keep;
  if (current) {
    for (const ChunkEntry& c : current->chunks) keep.insert({c.embeddings, c.metadata});
    keep.insert(current->previous_files.begin(), current->previous_files.end());
    keep.insert({current->faiss_file, current->skipped_file});
    // Readers that opened the previous generation search its FAISS index.
    keep.insert("faiss-" + std::to_string(current->generation - 1) + ".index");
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    bool unused = false;
    if (std::regex_match(name, kGenerationFile) || std::regex_match(name, kChunkFile))
      unused = !keep.count(name);  // temporary names are never kept
    else
      unused = (name.rfind(kManifestName, 0) == 0 && name != kManifestName) ||
               (name.rfind(kModelConfigName, 0) == 0 && name != kModelConfigName);
    if (unused) fs::remove(entry.path(), ec);
  }
}

void publish_generation(const std::string& dir, Manifest m, const std::vector<SkippedFile>& skipped,
                        const Manifest* previous, const std::map<std::string, std::string>& moves) {
  std::unique_ptr<faiss::Index> faiss_index;
  {
    const GenerationRows rows = GenerationRows::open(dir, m.chunks, m.dim, &moves);
    m.count = rows.count();
    RowSource source;
    source.count = rows.count();
    source.read = [&rows](int64_t begin, int64_t n, float* out) { rows.read(begin, n, out); };
    source.done = [&rows](int64_t begin, int64_t end) { rows.release(begin, end); };
    faiss_index = build_faiss(m.params, m.dim, source);
  }
  const std::string g = std::to_string(m.generation);
  m.faiss_file = "faiss-" + g + ".index";
  m.skipped_file = "skipped-" + g + ".jsonl";
  m.previous_files.clear();
  if (previous) {
    std::set<std::string> listed;
    for (const ChunkEntry& c : m.chunks) listed.insert({c.embeddings, c.metadata});
    for (const ChunkEntry& c : previous->chunks)
      for (const std::string& f : {c.embeddings, c.metadata})
        if (!listed.count(f)) m.previous_files.push_back(f);
  }
  for (const auto& [name, from] : moves) util::publish_file(from, dir + "/" + name);
  util::write_file_atomic(dir + "/" + m.skipped_file, skipped_to_jsonl(skipped));
  write_faiss(*faiss_index, dir + "/" + m.faiss_file);
  util::write_file_atomic(dir + "/" + kModelConfigName, m.model.config_json + "\n");
  util::sync_dir(dir);  // the chunk files renamed in before the manifest that names them
  write_manifest(dir, m);
  // The new generation is durable (write_manifest synced the folder): the work folders are fully
  // used, and what neither it nor its predecessor references is unused.
  std::error_code ec;
  fs::remove_all(dir + "/work", ec);
  fs::remove_all(dir + "/parts", ec);
  remove_unused_files(dir, &m);
}

}  // namespace clip::index
