// Checks a FAISS index file against what the manifest claims before FAISS reads it. faiss::read_index
// trusts every size in the file (a 1.8 KB file can make it allocate gigabytes, and a graph whose
// links point past its vectors makes searches read out of bounds), so the file's structure is walked
// here first: the index type, dimension and count match the manifest, every length fits in the
// bytes that follow it, the file ends where the structure ends, and stored ids and links point at
// rows. Only what `clip index` writes is accepted: IndexFlatIP, IndexIVFFlat and IndexIVFPQ (8-bit
// codes) (inner product, no direct map, array inverted lists) and IndexHNSWFlat (inner product), in
// FAISS 1.7's format.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "clip/index.h"

namespace clip::index {

// Reads `file` (of `file_size` bytes) from its start; throws clip::Error naming `path`, what the
// file claims and what was expected. Leaves the file position anywhere.
void check_faiss_file(std::FILE* file, int64_t file_size, const std::string& path, IndexKind kind, int dim,
                      int64_t count);

}  // namespace clip::index
