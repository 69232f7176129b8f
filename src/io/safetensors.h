// safetensors files: header parsing (validated: sizes, offsets, overlaps), memory-mapped reading,
// and atomic writing. Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace clip::io {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32" -> kF32 etc.; throws clip::Error naming `where` for an unknown name.
DType dtype_from_name(const std::string& name, const std::string& where);
const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets within the data section
  int64_t numel() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;              // in file order of their data
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_offset = 0;                     // where the data section starts in the file
};

// Parses and validates the header of a safetensors file held in `bytes[0, size)`: the header
// length, the JSON, every dtype, shape and offset range (inside the data, matching the shape,
// not overlapping another tensor). `what` names the file in errors.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& what);

// A memory-mapped safetensors file (copy-on-write: writing through data() never reaches the file).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const TensorInfo* find(const std::string& name) const;
  const uint8_t* data(const TensorInfo& t) const { return base_ + header_.data_offset + t.begin; }
  // Tells the kernel the pages wholly inside `t`'s bytes are no longer needed, so they leave the
  // process's resident memory (a later read maps them again from the file). Loading a model
  // calls it for each tensor once copied, so a load needs little more memory than the model.
  void release(const TensorInfo& t) const;

 private:
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// One tensor to write: raw little-endian bytes of numel(shape) * dtype_size(dtype).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t bytes;
};

// Writes a safetensors file atomically (temporary file, then rename). Tensors are laid out in
// the order given; the header is padded with spaces to a multiple of 8.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace clip::io
