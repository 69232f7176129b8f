#include "util/npy.h"

#include <cstring>
#include <regex>

#include "clip/error.h"
#include "util/file_io.h"

namespace clip::util {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t NpyArray::item_size() const { return static_cast<size_t>(std::stoi(dtype.substr(2))); }

NpyHeader parse_npy_header(std::string_view bytes, uint64_t file_size, const std::string& what) {
  static const char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    throw Error(what + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(what + ": truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    throw Error(what + ": unsupported .npy version " + std::to_string(major), ErrorKind::kUnsupported);
  }
  if (header_len > kMaxNpyHeaderBytes - offset)
    throw Error(what + ": .npy header of " + std::to_string(header_len) + " bytes, more than the limit of " +
                std::to_string(kMaxNpyHeaderBytes - offset));
  if (bytes.size() < offset + header_len || file_size < offset + header_len)
    throw Error(what + ": truncated .npy header");
  const std::string header(bytes.substr(offset, header_len));
  std::smatch m;
  NpyHeader out;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<>|][a-z][0-9]+)'")))
    throw Error(what + ": .npy header has no descr");
  out.dtype = m[1];
  if (out.dtype[0] == '>') throw Error(what + ": big-endian .npy is not supported", ErrorKind::kUnsupported);
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw Error(what + ": Fortran-order .npy is not supported", ErrorKind::kUnsupported);
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw Error(what + ": .npy header has no shape");
  const std::string dims = m[1];
  std::regex num("[0-9]+");
  out.data_offset = offset + header_len;
  const uint64_t present = file_size - out.data_offset;
  const size_t item = out.dtype.size() <= 4 ? static_cast<size_t>(std::stoi(out.dtype.substr(2))) : 0;
  if (item == 0) throw Error(what + ": .npy dtype \"" + out.dtype + "\" has no valid item size");
  // Every dimension and the product are bounded by the bytes present before anything is computed
  // from them, so a header claiming absurd sizes is an error, not an overflow or an allocation.
  uint64_t need = item;
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
    const std::string digits = it->str();
    const uint64_t dim = digits.size() <= 18 ? std::stoull(digits) : UINT64_MAX;
    if (dim > (uint64_t{1} << 48)) throw Error(what + ": .npy shape (" + dims + ") has a dimension over 2^48");
    if (dim > 0 && need > present / dim)
      throw Error(what + ": .npy data truncated: the shape (" + dims + ") needs more than the " +
                  std::to_string(present) + " data bytes present");
    need *= dim;
    out.shape.push_back(static_cast<int64_t>(dim));
  }
  if (present < need)
    throw Error(what + ": .npy data truncated: need " + std::to_string(need) + " bytes, have " +
                std::to_string(present));
  out.data_bytes = need;
  return out;
}

NpyArray parse_npy(const std::string& bytes, const std::string& what) {
  const NpyHeader h = parse_npy_header(bytes, bytes.size(), what);
  NpyArray out;
  out.dtype = h.dtype;
  out.shape = h.shape;
  out.data = bytes.substr(h.data_offset, h.data_bytes);
  return out;
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

std::string to_npy(const std::string& dtype, const std::vector<int64_t>& shape, const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i)
    dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  std::string header = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), bytes);
  return out;
}

void write_npy(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape, const void* data,
               size_t bytes) {
  write_file_atomic(path, to_npy(dtype, shape, data, bytes));
}

}  // namespace clip::util
