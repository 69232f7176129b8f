// File identity for change detection: size and modification time from stat, and a SHA-256 of
// the content. SHA-256 (OpenSSL, with SHA-NI/AVX2 kernels: over 1 GB/s) costs far less than
// decoding and embedding the image, is a standard anyone can check with `sha256sum`, and makes an
// accidental collision (a changed file taken for unchanged) practically impossible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace clip::index {

struct FileStat {
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

// stat(2) of a regular file (symlinks followed); throws clip::Error naming the path otherwise.
FileStat stat_file(const std::string& path);

// Lower-case hex SHA-256 of the bytes.
std::string sha256_hex(std::string_view bytes);

}  // namespace clip::index
