#include "index/index_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>

#include "clip/error.h"
#include "index/faiss_store.h"
#include "index/manifest.h"
#include "index/mapped_embeddings.h"
#include "util/file_io.h"
#include "util/npy.h"

#include <faiss/Index.h>

namespace fs = std::filesystem;

namespace clip::index {
namespace {

// The files an index folder may hold; anything else means the folder is not ours to write.
const std::regex kGenerationFile(R"((embeddings|metadata|faiss|skipped)-(\d{1,18})\.(npy|jsonl|index)(\.tmp\.\d+)?)");

bool is_index_file(const std::string& name) {
  return name == kManifestName || name == kModelConfigName || name == ".lock" || name == "work" ||
         std::regex_match(name, kGenerationFile) || name.find(".tmp.") != std::string::npos;
}

}  // namespace

FolderLock::FolderLock(const std::string& dir) {
  const std::string path = dir + "/.lock";
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

// Temporary files of an interrupted writer, the files of generations other than `current` and its
// predecessor, and the predecessor's skipped list (readers open only the metadata, FAISS and, to
// re-rank, embeddings files). The predecessor's reader files stay until the next generation is
// published, so that a reader that read the manifest just before the switch still finds them
// (docs/search.md, "Readers and writers").
void remove_unused_files(const std::string& dir, int64_t current) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    bool unused = false;
    if (std::regex_match(name, m, kGenerationFile)) {
      const int64_t g = std::stoll(m[2]);
      const bool read_by_readers = m[1] == "metadata" || m[1] == "faiss" || m[1] == "embeddings";
      unused = m[4].matched || !(g == current || (g == current - 1 && read_by_readers));
    } else {
      unused = (name.rfind(kManifestName, 0) == 0 && name != kManifestName) ||
               (name.rfind(kModelConfigName, 0) == 0 && name != kModelConfigName);
    }
    if (unused) fs::remove(entry.path(), ec);
  }
}

namespace {

// The generation's file names, filled into m.
void name_generation_files(Manifest& m) {
  const std::string g = std::to_string(m.generation);
  m.embeddings_file = "embeddings-" + g + ".npy";
  m.metadata_file = "metadata-" + g + ".jsonl";
  m.faiss_file = "faiss-" + g + ".index";
  m.skipped_file = "skipped-" + g + ".jsonl";
}

// The files besides the embeddings, then the manifest (the switch to the new generation), then
// the clean-up.
void publish_rest(const std::string& dir, const Manifest& m, const std::vector<FileRecord>& records,
                  const faiss::Index& faiss_index, const std::vector<SkippedFile>& skipped) {
  util::write_file_atomic(dir + "/" + m.metadata_file, records_to_jsonl(records));
  util::write_file_atomic(dir + "/" + m.skipped_file, skipped_to_jsonl(skipped));
  write_faiss(faiss_index, dir + "/" + m.faiss_file);
  util::write_file_atomic(dir + "/" + kModelConfigName, m.model.config_json + "\n");
  write_manifest(dir, m);
  // The new generation is durable (write_manifest synced the folder): the work folder is fully
  // used, and generations before the previous one are unreferenced.
  std::error_code ec;
  fs::remove_all(dir + "/work", ec);
  remove_unused_files(dir, m.generation);
}

}  // namespace

void publish_generation(const std::string& dir, Manifest m, const std::vector<FileRecord>& records,
                        const float* embeddings, const std::vector<SkippedFile>& skipped) {
  const int64_t n = static_cast<int64_t>(records.size());
  const std::unique_ptr<faiss::Index> faiss_index = build_faiss(m.params, m.dim, n, embeddings);
  m.count = n;
  name_generation_files(m);
  util::write_npy(dir + "/" + m.embeddings_file, "<f4", {n, m.dim}, embeddings,
                  static_cast<size_t>(n) * static_cast<size_t>(m.dim) * sizeof(float));
  publish_rest(dir, m, records, *faiss_index, skipped);
}

std::string embeddings_temp_path(const std::string& dir, int64_t generation) {
  return util::temp_path_for(dir + "/embeddings-" + std::to_string(generation) + ".npy");
}

void publish_generation_from_file(const std::string& dir, Manifest m, const std::vector<FileRecord>& records,
                                  const std::string& embeddings_tmp, const std::vector<SkippedFile>& skipped) {
  const int64_t n = static_cast<int64_t>(records.size());
  std::unique_ptr<faiss::Index> faiss_index;
  {
    const MappedEmbeddings rows = MappedEmbeddings::open(embeddings_tmp, n, m.dim);
    faiss_index = build_faiss(m.params, m.dim, n, n > 0 ? rows.row(0) : nullptr,
                              [&rows](int64_t begin, int64_t end) { rows.release(begin, end); });
  }
  m.count = n;
  name_generation_files(m);
  util::publish_file(embeddings_tmp, dir + "/" + m.embeddings_file);
  publish_rest(dir, m, records, *faiss_index, skipped);
}

}  // namespace clip::index
