#include "index/chunk_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "clip/error.h"
#include "index/manifest.h"
#include "util/file_io.h"
#include "util/half.h"
#include "util/npy.h"

namespace fs = std::filesystem;

namespace clip::index {
namespace {

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path + ": cannot write the embeddings: " + std::strerror(errno), ErrorKind::kIo);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

std::string chunk_stem(const std::string& prefix, int64_t generation, int64_t number) {
  char name[64];
  std::snprintf(name, sizeof name, "-%lld-%06lld", static_cast<long long>(generation), static_cast<long long>(number));
  return prefix + name;
}

ChunkFileWriter::ChunkFileWriter(const std::string& stem, int64_t rows, int dim, Storage storage)
    : stem_(stem), tmp_(util::temp_path_for(stem + ".npy")), rows_(rows), dim_(dim), storage_(storage) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(tmp_ + ": cannot create: " + std::strerror(errno), ErrorKind::kIo);
  const std::string header = util::to_npy(storage == Storage::kF16 ? "<f2" : "<f4", {rows, dim}, "", 0);
  write_all(fd_, header.data(), header.size(), tmp_);
}

ChunkFileWriter::~ChunkFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void ChunkFileWriter::append(const float* rows, int64_t n) {
  if (written_ + n > rows_)
    throw Error(stem_ + ".npy: more rows than the " + std::to_string(rows_) + " announced", ErrorKind::kInternal);
  const size_t values = static_cast<size_t>(n) * static_cast<size_t>(dim_);
  if (storage_ == Storage::kF32) {
    write_all(fd_, reinterpret_cast<const char*>(rows), values * sizeof(float), tmp_);
  } else {
    buffer_.resize(values * 2);
    for (size_t i = 0; i < values; ++i) {
      const uint16_t h = util::float_to_half(rows[i]);
      std::memcpy(buffer_.data() + 2 * i, &h, 2);
    }
    write_all(fd_, buffer_.data(), buffer_.size(), tmp_);
  }
  written_ += n;
}

void ChunkFileWriter::finish(const std::vector<FileRecord>& records) {
  if (static_cast<int64_t>(records.size()) != rows_)
    throw Error(stem_ + ": " + std::to_string(records.size()) + " records for " + std::to_string(rows_) + " rows",
                ErrorKind::kInternal);
  finish_embeddings();
  util::write_file_atomic(stem_ + ".jsonl", records_to_jsonl(records));
}

void ChunkFileWriter::finish_embeddings() {
  if (written_ != rows_)
    throw Error(stem_ + ".npy: " + std::to_string(written_) + " rows written, " + std::to_string(rows_) + " announced",
                ErrorKind::kInternal);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(tmp_.c_str());
    throw Error(tmp_ + ": cannot write the embeddings: " + std::strerror(errno), ErrorKind::kIo);
  }
  util::publish_file(tmp_, stem_ + ".npy");
}

ChunkEntry write_chunk(const std::string& stem, const std::vector<FileRecord>& records, const float* rows, int dim,
                       Storage storage) {
  const int64_t n = static_cast<int64_t>(records.size());
  ChunkFileWriter writer(stem, n, dim, storage);
  writer.append(rows, n);
  writer.finish(records);
  return chunk_entry(stem, n);
}

ChunkEntry chunk_entry(const std::string& stem, int64_t rows) {
  const std::string name = fs::path(stem).filename().string();
  return {name + ".npy", name + ".jsonl", rows, {}};
}

void round_to_storage(float* row, int dim, Storage storage) {
  if (storage != Storage::kF16) return;
  for (int j = 0; j < dim; ++j) row[j] = util::half_to_float(util::float_to_half(row[j]));
}

}  // namespace clip::index
