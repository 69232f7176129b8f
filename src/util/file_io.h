// Whole-file reads and atomic writes (temporary file in the same folder, flush, rename).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clip::util {

// Reads a whole file; throws clip::Error naming the file when it cannot be opened or read.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a partial file is never left under `path`.
void write_file_atomic(const std::string& path, std::string_view data);
// The same for a file made of `pieces` one after the other, so large files (model weights) need
// not be assembled in memory first.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces);

// True when `path` names an existing regular file.
bool file_exists(const std::string& path);

}  // namespace clip::util
