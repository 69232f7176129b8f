// NumPy .npy (format 1.0/2.0, little-endian, C order) reading and writing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clip::util {

struct NpyArray {
  std::string dtype;  // NumPy descr, e.g. "<f4", "|u1", "<i8", "<i4"
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes, C order

  int64_t numel() const;
  size_t item_size() const;
};

// The header of a .npy file: what its data is and where it starts.
struct NpyHeader {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t data_offset = 0;  // bytes before the data
  uint64_t data_bytes = 0;   // item size × every dimension
};
inline constexpr uint64_t kMaxNpyHeaderBytes = 65536 + 12;  // what parse_npy_header needs at most
// Parses the header from the file's first bytes (`prefix`, at most kMaxNpyHeaderBytes needed) and
// checks that the data the shape claims fits in `file_size` bytes before any size is computed
// from it; throws clip::Error naming `what` (the file) and the field.
NpyHeader parse_npy_header(std::string_view prefix, uint64_t file_size, const std::string& what);

// Parses .npy bytes; throws clip::Error naming `what` (usually the file) on malformed input.
NpyArray parse_npy(const std::string& bytes, const std::string& what);
NpyArray read_npy(const std::string& path);

// Serializes an array (dtype "<f4", "|u1", "<i8" or "<i4") as .npy bytes.
std::string to_npy(const std::string& dtype, const std::vector<int64_t>& shape, const void* data, size_t bytes);
// Writes atomically (temporary file, then rename).
void write_npy(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape, const void* data,
               size_t bytes);

}  // namespace clip::util
