#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "util/file_io.h"

namespace clip::io {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation's limit

struct DTypeRow {
  DType type;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::kF64, "F64", 8}, {DType::kF32, "F32", 4},   {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},   {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},   {DType::kBool, "BOOL", 1},
};

const DTypeRow& row_of(DType t) {
  for (const auto& r : kDTypes)
    if (r.type == t) return r;
  throw Error("internal: unknown dtype");
}

}  // namespace

DType dtype_from_name(const std::string& name, const std::string& where) {
  for (const auto& r : kDTypes)
    if (name == r.name) return r.type;
  throw Error(
      where + ": unsupported dtype \"" + name + "\" (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)",
      ErrorKind::kUnsupported);
}

const char* dtype_name(DType t) { return row_of(t).name; }
size_t dtype_size(DType t) { return row_of(t).size; }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& what) {
  if (size < 8)
    throw Error(what + ": not a safetensors file: " + std::to_string(size) +
                " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  if (n > kMaxHeaderBytes)
    throw Error(what + ": safetensors header length " + std::to_string(n) + " is absurd (limit " +
                std::to_string(kMaxHeaderBytes) + " bytes)");
  if (n > size - 8)
    throw Error(what + ": safetensors header length " + std::to_string(n) + " runs past the end of the file (" +
                std::to_string(size) + " bytes): truncated?");
  if (n < 2 || bytes[8] != '{') throw Error(what + ": safetensors header is not a JSON object");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes + 8, bytes + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(what + ": safetensors header is not a JSON object");
  SafetensorsHeader h;
  h.data_offset = 8 + n;
  const uint64_t data_size = size - h.data_offset;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string where = what + ": tensor \"" + it.key() + "\"";
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) throw Error(what + ": __metadata__ must be an object of strings");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) throw Error(what + ": __metadata__ \"" + m.key() + "\" must be a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const nlohmann::json& e = it.value();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw Error(where + ": expected {dtype, shape, data_offsets}");
    if (!e["dtype"].is_string()) throw Error(where + ": dtype must be a string");
    TensorInfo t;
    t.name = it.key();
    t.dtype = dtype_from_name(e["dtype"].get<std::string>(), where);
    if (!e["shape"].is_array()) throw Error(where + ": shape must be an array");
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) throw Error(where + ": shape entries must be non-negative integers");
      const uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > (uint64_t{1} << 62) / v) throw Error(where + ": shape is absurdly large");
      numel *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + ": data_offsets must be [begin, end]");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.begin > t.end || t.end > data_size)
      throw Error(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                  "] outside the data section of " + std::to_string(data_size) + " bytes");
    const uint64_t expected = numel * dtype_size(t.dtype);
    if (t.end - t.begin != expected)
      throw Error(where + ": holds " + std::to_string(t.end - t.begin) + " bytes, but its dtype and shape need " +
                  std::to_string(expected));
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < h.tensors.size(); ++i) {
    const TensorInfo& a = h.tensors[i - 1];
    const TensorInfo& b = h.tensors[i];
    if (b.begin < a.end)
      throw Error(what + ": tensors \"" + a.name + "\" and \"" + b.name + "\" overlap in the data section");
  }
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    throw Error(path + ": cannot open: " + std::strerror(err), util::open_error_kind(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw Error(path + ": cannot map: " + why);
    }
    base_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  try {
    header_ = parse_safetensors_header(base_, size_, path);
  } catch (...) {
    if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
    throw;
  }
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

void SafetensorsFile::release(const TensorInfo& t) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data(t)), end = begin + (t.end - t.begin);
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    if (static_cast<size_t>(numel) * dtype_size(t.dtype) != t.bytes)
      throw Error(path + ": tensor \"" + t.name + "\": " + std::to_string(t.bytes) + " bytes do not match its shape");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((uint64_t(json.size()) >> (8 * i)) & 0xff);
  // Written piece by piece from the tensors' own memory: no copy of the whole file in memory.
  std::vector<std::string_view> pieces = {length, json};
  for (const auto& t : tensors) pieces.emplace_back(static_cast<const char*>(t.data), t.bytes);
  util::write_file_atomic(path, pieces);
}

}  // namespace clip::io
