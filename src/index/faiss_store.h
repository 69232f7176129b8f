// The FAISS side of an index: building the search structure from normalized embeddings, saving
// it atomically, loading it with its search-time parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "clip/index.h"

namespace clip::index {

// Builds an inner-product index over n rows of `dim` floats (row i gets id i); IVF kinds are
// trained on params.train_sample rows (0: all). Throws clip::Error when the parameters do not fit n
// (e.g. IVF with more lists than rows).
std::unique_ptr<faiss::Index> build_faiss(const IndexParams& params, int dim, int64_t n, const float* rows);

// Writes to a temporary file beside `path`, then renames.
void write_faiss(const faiss::Index& index, const std::string& path);

// Reads and checks the dimension and row count against the manifest; applies nprobe / efSearch.
// `mmap`: an IVF index's inverted lists are memory-mapped from the file, not read (the mapping
// keeps the file's pages reachable even after the file is removed).
std::unique_ptr<faiss::Index> read_faiss(const std::string& path, const IndexParams& params, int dim, int64_t count,
                                         bool mmap = false);

}  // namespace clip::index
