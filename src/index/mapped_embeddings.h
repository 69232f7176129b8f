// A read-only memory map of one embeddings .npy (float32 or float16 [count, dim], C order), checked
// against what the manifest (or the caller) expects before any row is read. Pages are read on
// demand, so a file larger than memory costs only the rows touched (re-ranking reads a few hundred).
#pragma once

#include <cstdint>
#include <string>

namespace clip::index {

// How the rows will be read. kRandom (re-ranking: a few hundred scattered rows) tells the kernel
// not to read ahead around a page fault: with the device's read-ahead window (8 MiB on this
// machine's disk) each candidate row of 1-2 KiB would otherwise pull megabytes from a cold disk.
// kSequential (passes over every row) keeps the read-ahead.
enum class RowAccess { kSequential, kRandom };

class MappedEmbeddings {
 public:
  MappedEmbeddings() = default;
  // Maps `path`; throws clip::Error naming the file when it is missing (kNotFound), not a regular
  // file, not a float32 or float16 .npy of shape [count, dim] (count < 0: any row count), or not
  // exactly header + data bytes long.
  static MappedEmbeddings open(const std::string& path, int64_t count, int dim,
                               RowAccess access = RowAccess::kSequential);
  MappedEmbeddings(MappedEmbeddings&& other) noexcept;
  MappedEmbeddings& operator=(MappedEmbeddings&& other) noexcept;
  MappedEmbeddings(const MappedEmbeddings&) = delete;
  MappedEmbeddings& operator=(const MappedEmbeddings&) = delete;
  ~MappedEmbeddings();

  int64_t count() const { return count_; }
  int dim() const { return dim_; }
  bool half() const { return half_; }
  // Rows [begin, begin + n) as float32 into out (n × dim floats); not range-checked: callers check
  // ids against count().
  void read(int64_t begin, int64_t n, float* out) const;
  // Drops the pages that lie wholly inside rows [begin, end) from this process's memory (they are
  // read from the file again if touched): a pass over a collection larger than memory keeps only
  // what it has not finished with.
  void release(int64_t begin, int64_t end) const;
  // Asks the kernel to start reading the pages of rows [begin, end) now, without waiting: rows read
  // soon after, scattered over a cold file, then cost one round of parallel device reads instead
  // of one synchronous read each.
  void will_need(int64_t begin, int64_t end) const;

 private:
  size_t row_bytes() const { return static_cast<size_t>(dim_) * (half_ ? 2 : 4); }
  // Calls madvise(advice) on the whole pages that hold rows [begin, end): `outer` widens the range
  // to every page touched, otherwise it narrows it to the pages lying wholly inside.
  void advise(int64_t begin, int64_t end, bool outer, int advice) const;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const char* rows_ = nullptr;
  int64_t count_ = 0;
  int dim_ = 0;
  bool half_ = false;
};

}  // namespace clip::index
