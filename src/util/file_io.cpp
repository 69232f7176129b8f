#include "util/file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "clip/error.h"

namespace clip::util {
namespace {

std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// fsync of an open descriptor, retried on EINTR; returns errno or 0.
int sync_fd(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

}  // namespace

std::string read_file(const std::string& path) { return read_file(path, UINT64_MAX); }

std::string read_file(const std::string& path, uint64_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw Error(path + ": cannot open: " + std::strerror(errno),
                errno == ENOENT ? ErrorKind::kNotFound : ErrorKind::kIo);
  struct stat st;
  if (max_bytes != UINT64_MAX && ::fstat(::fileno(f), &st) == 0 && static_cast<uint64_t>(st.st_size) > max_bytes) {
    std::fclose(f);
    throw Error(path + ": " + std::to_string(st.st_size) + " bytes, expected at most " + std::to_string(max_bytes),
                ErrorKind::kTooLarge);
  }
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (data.size() + n > max_bytes) {  // grew after the check
      std::fclose(f);
      throw Error(path + ": more than " + std::to_string(max_bytes) + " bytes", ErrorKind::kTooLarge);
    }
    data.append(buf, n);
  }
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) throw Error(path + ": read error", ErrorKind::kIo);
  return data;
}

std::string temp_path_for(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

void remove_temp_files_of(const std::string& path) {
  const std::string dir = folder_of(path);
  const std::string prefix = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
        name.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
      stale.push_back(dir + "/" + name);
  }
  ::closedir(d);
  for (const std::string& p : stale) ::unlink(p.c_str());
}

void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(dir + ": cannot open the folder to sync it: " + std::strerror(errno), ErrorKind::kIo);
  const int err = sync_fd(fd);
  ::close(fd);
  if (err != 0) throw Error(dir + ": cannot sync the folder: " + std::strerror(err), ErrorKind::kIo);
}

void publish_file(const std::string& tmp, const std::string& path) {
  // The data must be on disk before the new name can point at it: a rename that reaches the disk
  // before the data would leave an empty or partial file under `path` after a power cut.
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : sync_fd(fd);
  if (fd >= 0) ::close(fd);
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot flush the temporary file " + tmp + ": " + std::strerror(err), ErrorKind::kIo);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place: " + std::strerror(err), ErrorKind::kIo);
  }
  sync_dir(folder_of(path));  // the rename itself
}

void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, std::vector<std::string_view>{data});
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces) {
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create: " + std::strerror(errno), ErrorKind::kIo);
  auto fail = [&](const std::string& what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(path + ": " + what + ": " + std::strerror(err), ErrorKind::kIo);
  };
  for (const std::string_view data : pieces) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write failed", errno);
      }
      done += static_cast<size_t>(w);
    }
  }
  if (const int err = sync_fd(fd); err != 0) fail("flush failed", err);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": flush failed: " + std::strerror(err), ErrorKind::kIo);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place: " + std::strerror(err), ErrorKind::kIo);
  }
  sync_dir(folder_of(path));
}

void create_directories(const std::string& dir, std::string_view what) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw Error(dir + ": exists and is not a folder (expected " + std::string(what) + ")");
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create " + std::string(what) + ": " + ec.message(), ErrorKind::kIo);
}

ErrorKind open_error_kind(int err) { return err == ENOENT || err == ENOTDIR ? ErrorKind::kNotFound : ErrorKind::kIo; }

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

ReadOnlyFile::ReadOnlyFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: a FIFO put in a file's place is refused below instead of blocking the open until a
  // writer comes (it changes nothing for a regular file).
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) throw Error(path + ": cannot open: " + std::strerror(errno), open_error_kind(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(path + ": not a regular file", ErrorKind::kIo);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

ReadOnlyFile::ReadOnlyFile(ReadOnlyFile&& other) noexcept { *this = std::move(other); }

ReadOnlyFile& ReadOnlyFile::operator=(ReadOnlyFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

ReadOnlyFile::~ReadOnlyFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ReadOnlyFile::read_at(uint64_t offset, void* out, size_t n, std::string_view what) const {
  char* to = static_cast<char*>(out);
  for (size_t got = 0; got < n;) {
    const ssize_t r = ::pread(fd_, to + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw Error(path_ + ": cannot read " + std::string(what), ErrorKind::kIo);
    got += static_cast<size_t>(r);
  }
}

}  // namespace clip::util
