// Whole-file reads and atomic, durable writes (temporary file in the same folder, fsync, rename,
// fsync of the folder).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "clip/error.h"

namespace clip::util {

// Reads a whole file; throws clip::Error naming the file when it cannot be opened (kind
// kNotFound when it does not exist, kIo otherwise) or read (kIo).
std::string read_file(const std::string& path);
// The same for a file that must not exceed `max_bytes` (checked before anything is allocated):
// a larger one is an error of kind kTooLarge naming the file, its size and the limit.
std::string read_file(const std::string& path, uint64_t max_bytes);

// Writes `data` to `path` atomically and durably: the bytes go to a temporary file beside it
// (temp_path_for), which is fsync'ed, renamed over `path`, and the folder fsync'ed, so a partial
// file is never left under `path` and a returned call survives a power cut. On failure the
// temporary file is removed and `path` is left as it was.
void write_file_atomic(const std::string& path, std::string_view data);
// The same for a file made of `pieces` one after the other, so large files (model weights) need
// not be assembled in memory first.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces);

// The temporary name write_file_atomic uses for `path`: "<path>.tmp.<pid>".
std::string temp_path_for(const std::string& path);

// Removes the temporary files that killed writers of `path` left ("<path>.tmp.<digits>"). Only for
// the one process that writes `path`.
void remove_temp_files_of(const std::string& path);

// Publishes a finished temporary file written by other code (a library that writes to a path):
// fsync `tmp`, rename it to `path`, fsync the folder. Removes `tmp` and throws clip::Error naming
// `path` on failure.
void publish_file(const std::string& tmp, const std::string& path);

// fsync of a folder, so that the names created, renamed or removed in it are durable. Throws
// clip::Error naming the folder.
void sync_dir(const std::string& dir);

// Creates the folder `dir` and its missing parents; nothing when it exists. Throws clip::Error
// "<dir>: exists and is not a folder (expected <what>)" (kInvalidInput) or "<dir>: cannot create <what>: <reason>"
// (kIo), where `what` says what the folder is for ("the feature cache folder").
void create_directories(const std::string& dir, std::string_view what);

// The kind of a failed open() or stat() by its errno: kNotFound when the path does not exist
// (ENOENT, ENOTDIR), kIo otherwise.
ErrorKind open_error_kind(int err);

// True when `path` names an existing regular file.
bool file_exists(const std::string& path);

// A file opened read-only (close-on-exec) and checked to be a regular file (a FIFO, device or
// folder is refused without blocking); closed when this goes (a memory map of it stays valid). Throws clip::Error "<path>: cannot open: <reason>" (kind by
// open_error_kind) or "<path>: not a regular file" (kIo).
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::string& path);
  ReadOnlyFile(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile& operator=(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  ~ReadOnlyFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // when opened
  const std::string& path() const { return path_; }
  // Reads exactly `n` bytes at `offset` (short reads and EINTR retried); throws clip::Error
  // "<path>: cannot read <what>" (kIo) on an error or an early end of the file.
  void read_at(uint64_t offset, void* out, size_t n, std::string_view what) const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

}  // namespace clip::util
