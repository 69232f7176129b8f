// The writer's side of an index folder: the lock two writers contend for, which files belong to an
// index, cleaning up what an interrupted writer left, and publishing a generation (files first,
// manifest last). Shared by build/update and import.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clip/index.h"

namespace clip::index {

// An exclusive lock on INDEX/.lock for the whole run: two writers would interleave generations.
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir);
  ~FolderLock();  // closing releases the lock
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

// Creates `dir` if needed and checks that a new index may be written there: no manifest (an index
// is updated, not rebuilt over), and nothing that is not an index file. Throws clip::Error naming
// the folder and what it found.
void prepare_new_index_folder(const std::string& dir);

// Removes what no reader can be using any more, given the generation `current` that the manifest
// names (0: none yet). Only called under the folder lock.
void remove_unused_files(const std::string& dir, int64_t current);

// Writes generation m.generation of `dir`: the embeddings (n × m.dim floats, row i = records[i]),
// metadata, skipped list and FAISS index (built here with m.params), the model config, then the
// manifest (the switch); then removes the work folder and unused files. m.count and the file names
// are filled in here.
void publish_generation(const std::string& dir, Manifest m, const std::vector<FileRecord>& records,
                        const float* embeddings, const std::vector<SkippedFile>& skipped);

// The same for embeddings already written to embeddings_temp_path(dir, m.generation) (a float32
// .npy of records.size() × m.dim normalized rows): the FAISS index is built from a memory map of
// it, releasing the pages of the rows it has added (IVF kinds), and the file is renamed into
// place, so publishing a collection larger than memory needs the memory of its index (and of a
// flat or HNSW index's copy of the rows), not of its embeddings.
std::string embeddings_temp_path(const std::string& dir, int64_t generation);
void publish_generation_from_file(const std::string& dir, Manifest m, const std::vector<FileRecord>& records,
                                  const std::string& embeddings_tmp, const std::vector<SkippedFile>& skipped);

}  // namespace clip::index
