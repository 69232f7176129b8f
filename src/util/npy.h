// NumPy .npy (format 1.0/2.0, little-endian, C order) reading and writing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clip::util {

struct NpyArray {
  std::string dtype;  // NumPy descr, e.g. "<f4", "|u1", "<i8", "<i4"
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes, C order

  int64_t numel() const;
  size_t item_size() const;
};

// Parses .npy bytes; throws clip::Error naming `what` (usually the file) on malformed input.
NpyArray parse_npy(const std::string& bytes, const std::string& what);
NpyArray read_npy(const std::string& path);

// Serializes an array (dtype "<f4", "|u1", "<i8" or "<i4") as .npy bytes.
std::string to_npy(const std::string& dtype, const std::vector<int64_t>& shape, const void* data, size_t bytes);
// Writes atomically (temporary file, then rename).
void write_npy(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape, const void* data,
               size_t bytes);

}  // namespace clip::util
