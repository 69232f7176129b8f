// The embeddings of one index generation, read through memory maps of its chunk files: image id i
// is the i-th live (not dropped) row in chunk order. This is what searching re-ranks from, what
// FAISS is built from, and what export and duplicates read; none of them holds the collection in
// memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "clip/index.h"
#include "index/mapped_embeddings.h"

namespace clip::index {

class GenerationRows {
 public:
  // Maps every chunk's embeddings file in `dir`, checking each against its row count and `dim`
  // (clip::Error naming the file; kNotFound when one is gone).
  // `located` (optional): chunk files not in `dir` yet, by name -> their path now.
  // `access`: how the rows will be read (RowAccess; re-ranking reads scattered rows).
  static GenerationRows open(const std::string& dir, const std::vector<ChunkEntry>& chunks, int dim,
                             const std::map<std::string, std::string>* located = nullptr,
                             RowAccess access = RowAccess::kSequential);

  int64_t count() const { return first_.empty() ? 0 : first_.back(); }
  int dim() const { return dim_; }
  // Rows [begin, begin + n) as float32 into out (n × dim floats); throws clip::Error when the range
  // is outside [0, count()).
  void read(int64_t begin, int64_t n, float* out) const;
  // Lets go of the pages of rows [begin, end) (see MappedEmbeddings::release).
  void release(int64_t begin, int64_t end) const;
  // Starts reading the pages of these ids' rows (see MappedEmbeddings::will_need); ids outside
  // [0, count()) are ignored.
  void will_need(const std::vector<int64_t>& ids) const;

 private:
  // Calls visit(chunk, file row, n, id) for the runs of consecutive file rows behind ids [begin, end).
  template <typename Visit>
  void for_each_run(int64_t begin, int64_t end, Visit visit) const;

  int dim_ = 0;
  std::vector<MappedEmbeddings> files_;
  std::vector<int64_t> first_;              // first_[c]: the id of chunk c's first live row; back(): count
  std::vector<std::vector<int64_t>> live_;  // per chunk: the file row of each live row (empty: none dropped)
};

// Reads a whole generation into memory (tests and small tools; count × dim floats).
std::vector<float> read_generation_embeddings(const std::string& dir, const Manifest& m);

}  // namespace clip::index
