#include "index/mapped_embeddings.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "clip/error.h"
#include "util/file_io.h"
#include "util/half.h"
#include "util/npy.h"

namespace clip::index {

MappedEmbeddings MappedEmbeddings::open(const std::string& path, int64_t count, int dim, RowAccess access) {
  const util::ReadOnlyFile file(path);  // closed on return: the mapping outlives it
  const uint64_t file_size = file.size();
  std::string prefix(static_cast<size_t>(std::min<uint64_t>(file_size, util::kMaxNpyHeaderBytes)), '\0');
  file.read_at(0, prefix.data(), prefix.size(), "the .npy header");
  const util::NpyHeader h = util::parse_npy_header(prefix, file_size, path);
  if ((h.dtype != "<f4" && h.dtype != "<f2") || h.shape.size() != 2 || h.shape[1] != dim || (count >= 0 && h.shape[0] != count))
    throw Error(path + ": expected float32 or float16 [" + (count >= 0 ? std::to_string(count) : std::string("N")) + ", " +
                std::to_string(dim) + "] embeddings, found dtype " + h.dtype + " with " +
                std::to_string(h.shape.size()) + " dimensions" +
                (h.shape.size() == 2 ? " [" + std::to_string(h.shape[0]) + ", " + std::to_string(h.shape[1]) + "]"
                                     : std::string()));
  if (h.data_offset + h.data_bytes != file_size)
    throw Error(path + ": " + std::to_string(file_size - h.data_offset - h.data_bytes) +
                " bytes follow the embeddings the header describes");
  const bool half = h.dtype == "<f2";
  if (!half && h.data_offset % alignof(float) != 0)
    throw Error(path + ": the .npy data starts at an unaligned offset (" + std::to_string(h.data_offset) + ")",
                ErrorKind::kUnsupported);
  MappedEmbeddings out;
  out.count_ = h.shape[0];
  out.dim_ = dim;
  out.half_ = half;
  if (out.count_ == 0) return out;
  void* map = ::mmap(nullptr, static_cast<size_t>(file_size), PROT_READ, MAP_SHARED, file.fd(), 0);
  if (map == MAP_FAILED) throw Error(path + ": cannot map the embeddings: " + std::strerror(errno), ErrorKind::kIo);
  if (access == RowAccess::kRandom)
    ::madvise(map, static_cast<size_t>(file_size), MADV_RANDOM);  // advice: a failure only costs reads
  out.map_ = map;
  out.map_bytes_ = static_cast<size_t>(file_size);
  out.rows_ = static_cast<const char*>(map) + h.data_offset;
  return out;
}

void MappedEmbeddings::read(int64_t begin, int64_t n, float* out) const {
  const char* from = rows_ + static_cast<size_t>(begin) * row_bytes();
  const size_t values = static_cast<size_t>(n) * static_cast<size_t>(dim_);
  if (!half_) {
    std::memcpy(out, from, values * sizeof(float));
    return;
  }
  for (size_t i = 0; i < values; ++i) {
    uint16_t v;
    std::memcpy(&v, from + 2 * i, 2);
    out[i] = util::half_to_float(v);
  }
}

void MappedEmbeddings::advise(int64_t begin, int64_t end, bool outer, int advice) const {
  if (!map_ || begin >= end) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(rows_ + static_cast<size_t>(begin) * row_bytes());
  const uintptr_t last = reinterpret_cast<uintptr_t>(rows_ + static_cast<size_t>(end) * row_bytes());
  const uintptr_t from = outer ? first / page * page : (first + page - 1) / page * page;
  const uintptr_t to = outer ? (last + page - 1) / page * page : last / page * page;
  if (from < to) ::madvise(reinterpret_cast<void*>(from), to - from, advice);  // advice: a failure only costs time or memory
}

void MappedEmbeddings::release(int64_t begin, int64_t end) const { advise(begin, end, false, MADV_DONTNEED); }

void MappedEmbeddings::will_need(int64_t begin, int64_t end) const { advise(begin, end, true, MADV_WILLNEED); }

MappedEmbeddings::MappedEmbeddings(MappedEmbeddings&& other) noexcept { *this = std::move(other); }

MappedEmbeddings& MappedEmbeddings::operator=(MappedEmbeddings&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, map_bytes_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    rows_ = std::exchange(other.rows_, nullptr);
    count_ = std::exchange(other.count_, 0);
    dim_ = std::exchange(other.dim_, 0);
    half_ = std::exchange(other.half_, false);
  }
  return *this;
}

MappedEmbeddings::~MappedEmbeddings() {
  if (map_) ::munmap(map_, map_bytes_);
}

}  // namespace clip::index
