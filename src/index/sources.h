// Listing the image files of an index source (a folder, or a CSV of paths), or its tar shards.
#pragma once

#include <string>
#include <vector>

#include "clip/index.h"

namespace clip::index {

struct SourceListing {
  std::vector<std::string> files;    // absolute, lexically normal, sorted, unique (shards: canonical)
  std::vector<SkippedFile> missing;  // CSV rows naming a file that is not there, shards not there
  int64_t ignored = 0;               // folder: regular files without an image extension
};

// Throws clip::Error when the source itself (folder or CSV file) cannot be read. A shard source
// lists the shards its pattern names (their members are read by the builder).
SourceListing list_source(const Source& source);

// Whether a file name has an image extension we index (.jpg .jpeg .png .webp .bmp .gif, any case).
bool has_image_extension(const std::string& path);

}  // namespace clip::index
