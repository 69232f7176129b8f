// The writer's side of an index folder: the lock two writers contend for, which files belong to an
// index, cleaning up what an interrupted writer left, and publishing a generation (files first,
// manifest last). Shared by build/update and import.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "clip/index.h"

namespace clip::index {

// An exclusive lock on INDEX/.lock for the whole run: two writers would interleave generations.
// (A rank of a distributed build locks its own part's lock file, `name`, instead.)
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir, const std::string& name = ".lock");
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

// Removes what no reader can be using any more: temporary files, and the chunk, FAISS and skipped
// files that neither `current` (the generation the manifest names; null: none yet) nor, for
// readers that opened it, the generation before it reference. Only called under the folder lock.
void remove_unused_files(const std::string& dir, const Manifest* current);

// Publishes generation m.generation of `dir`: m.chunks name chunk files already in the folder. The
// FAISS index is built from memory maps of them (releasing the pages of rows it has added, so a
// collection larger than memory needs the memory of its index, not of its embeddings); then the
// skipped list, the FAISS index, the model config and last the manifest (the switch) are written,
// and the work folders and unused files removed. m.count, m.previous_files and the file names are
// filled in here; `previous` is the generation being replaced (null: none).
// `moves` (optional): chunk files m.chunks names that are still elsewhere (name -> path now); they
// are renamed into `dir` after the FAISS index is built, before the manifest is written.
void publish_generation(const std::string& dir, Manifest m, const std::vector<SkippedFile>& skipped,
                        const Manifest* previous, const std::map<std::string, std::string>& moves = {});

}  // namespace clip::index
