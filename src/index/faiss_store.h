// The FAISS side of an index: building the search structure from normalized embeddings, saving
// it atomically, loading it with its search-time parameters.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "clip/index.h"

namespace clip::index {

// The rows an index is built from: `read` copies rows [begin, begin + n) into out (n × dim
// floats); `done` (may be null) hears which rows the builder has finished with for now, so that
// rows read from memory maps can be released.
struct RowSource {
  int64_t count = 0;
  std::function<void(int64_t begin, int64_t n, float* out)> read;
  std::function<void(int64_t begin, int64_t end)> done;
};
// Rows already in memory.
RowSource rows_in_memory(int64_t n, int dim, const float* rows);

// Builds an inner-product index over the source's rows (row i gets id i); IVF kinds are trained on
// params.train_sample rows (0: all), copied out of the source, and add rows in batches of
// kAddBatchRows read one batch at a time; flat and HNSW indexes keep a copy of every row anyway
// and add them in one call. Throws clip::Error when the parameters do not fit the row count (e.g.
// IVF with more lists than rows).
// FAISS's product quantizer encodes a batch through distance tables of rows × m × 256 floats when
// a sub-vector has 16 dimensions or more: small batches keep that bounded (4096 rows, m = 16: 64 MiB).
inline constexpr int64_t kAddBatchRows = 4096;
std::unique_ptr<faiss::Index> build_faiss(const IndexParams& params, int dim, const RowSource& rows);

// Writes to a temporary file beside `path`, then renames.
void write_faiss(const faiss::Index& index, const std::string& path);

// Reads and checks the dimension and row count against the manifest; applies nprobe / efSearch.
// `mmap`: an IVF index's inverted lists are memory-mapped from the file, not read (the mapping
// keeps the file's pages reachable even after the file is removed).
std::unique_ptr<faiss::Index> read_faiss(const std::string& path, const IndexParams& params, int dim, int64_t count,
                                         bool mmap = false);

}  // namespace clip::index
