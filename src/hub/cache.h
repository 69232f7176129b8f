// One repo in the Hugging Face cache, in huggingface_hub's layout (docs/models.md):
//   <root>/models--ORG--NAME/refs/<revision>            the commit sha, no newline
//   <root>/models--ORG--NAME/snapshots/<sha>/<file>     -> ../../blobs/<etag> (relative symlink)
//   <root>/models--ORG--NAME/blobs/<etag>[.incomplete]  sha256 (LFS) or git sha1 of the file
//   <root>/.locks/models--ORG--NAME/<etag>.lock         flock while a blob is downloaded
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace clip::hub {

// "models--ORG--NAME" for "ORG/NAME" (the repo id must be valid).
std::string repo_folder_name(const std::string& repo);

class RepoCache {
 public:
  RepoCache(std::string root, std::string repo);

  const std::string& root() const { return root_; }
  const std::string& repo() const { return repo_; }
  const std::string& folder() const { return folder_; }

  // The commit a revision points to: the revision itself when it is a commit hash, else the
  // content of refs/<revision> (validated); nullopt when unknown.
  std::optional<std::string> commit_of(const std::string& revision) const;
  // The snapshot path of `file` at `revision` when it is cached (a symlink to an existing blob, or
  // a regular file); nullopt otherwise.
  std::optional<std::string> cached_file(const std::string& revision, const std::string& file) const;

  std::string snapshot_path(const std::string& commit, const std::string& file) const;
  std::string blob_path(const std::string& etag) const;
  std::string lock_path(const std::string& etag) const;

  // Points snapshots/<commit>/<file> at blobs/<etag> (a new symlink renamed into place).
  void link_snapshot(const std::string& commit, const std::string& file, const std::string& etag) const;
  // Writes refs/<revision> = commit (atomically), unless the revision is the commit itself.
  void write_ref(const std::string& revision, const std::string& commit) const;

  // Bytes of the blobs (what the repo takes on disk); 0 when not cached.
  uint64_t size_on_disk() const;
  bool exists() const;
  // Removes the repo's folder (snapshots, blobs, refs) and its locks.
  void remove() const;

 private:
  std::string root_, repo_, folder_;
};

// Creates a folder and its parents (mode 0755); throws clip::Error (kIo) naming it.
void make_dirs(const std::string& path);

}  // namespace clip::hub
