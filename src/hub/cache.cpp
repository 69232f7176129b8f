#include "hub/cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "clip/error.h"
#include "hub/validate.h"
#include "util/file_io.h"

namespace clip::hub {
namespace fs = std::filesystem;
namespace {

// A temporary name beside `path`, unique per process and thread: two threads (or processes)
// publishing the same link or ref never share one.
std::string unique_temp_path(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." +
         std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 1000000) + "." +
         std::to_string(counter++);
}

}  // namespace

std::string repo_folder_name(const std::string& repo) {
  validate_repo_id(repo, "repo");
  const size_t slash = repo.find('/');
  return "models--" + repo.substr(0, slash) + "--" + repo.substr(slash + 1);
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error(path + ": cannot create the folder: " + ec.message(), ErrorKind::kIo);
}

RepoCache::RepoCache(std::string root, std::string repo)
    : root_(std::move(root)), repo_(std::move(repo)), folder_(root_ + "/" + repo_folder_name(repo_)) {}

std::optional<std::string> RepoCache::commit_of(const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  validate_revision(revision, repo_ + " revision");
  const std::string ref = folder_ + "/refs/" + revision;
  if (!util::file_exists(ref)) return std::nullopt;
  std::string commit = util::read_file(ref, 256);
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit))
    throw Error(ref + ": expected a 40-digit commit hash, found \"" + commit.substr(0, 64) + "\"");
  return commit;
}

std::optional<std::string> RepoCache::cached_file(const std::string& revision, const std::string& file) const {
  validate_repo_file(file, repo_ + " file");
  const std::optional<std::string> commit = commit_of(revision);
  if (!commit) return std::nullopt;
  const std::string path = snapshot_path(*commit, file);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;  // follows the link
  return path;
}

std::string RepoCache::snapshot_path(const std::string& commit, const std::string& file) const {
  return folder_ + "/snapshots/" + commit + "/" + file;
}

std::string RepoCache::blob_path(const std::string& etag) const { return folder_ + "/blobs/" + etag; }

std::string RepoCache::lock_path(const std::string& etag) const {
  return root_ + "/.locks/" + repo_folder_name(repo_) + "/" + etag + ".lock";
}

void RepoCache::link_snapshot(const std::string& commit, const std::string& file, const std::string& etag) const {
  validate_repo_file(file, repo_ + " file");
  validate_blob_name(etag, repo_ + " ETag");
  const std::string link = snapshot_path(commit, file);
  make_dirs(fs::path(link).parent_path().string());
  // ../../blobs/<etag> from snapshots/<sha>/, one more ../ per folder level of the file.
  std::string target = "../../";
  for (char c : file)
    if (c == '/') target += "../";
  target += "blobs/" + etag;
  const std::string tmp = unique_temp_path(link);
  if (::symlink(target.c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), link.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error(link + ": cannot create the snapshot link: " + why, ErrorKind::kIo);
  }
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  validate_revision(revision, repo_ + " revision");
  const std::string ref = folder_ + "/refs/" + revision;
  make_dirs(fs::path(ref).parent_path().string());
  const std::string tmp = unique_temp_path(ref);
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    const bool ok = f && std::fwrite(commit.data(), 1, commit.size(), f) == commit.size();
    if ((f && std::fclose(f) != 0) || !ok || ::rename(tmp.c_str(), ref.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      ::unlink(tmp.c_str());
      throw Error(ref + ": cannot write the ref: " + why, ErrorKind::kIo);
    }
  }
}

uint64_t RepoCache::size_on_disk() const {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(folder_ + "/blobs", ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

bool RepoCache::exists() const {
  std::error_code ec;
  return fs::is_directory(folder_, ec);
}

void RepoCache::remove() const {
  std::error_code ec;
  fs::remove_all(folder_, ec);
  if (ec) throw Error(folder_ + ": cannot remove: " + ec.message(), ErrorKind::kIo);
  fs::remove_all(root_ + "/.locks/" + repo_folder_name(repo_), ec);
}

}  // namespace clip::hub
