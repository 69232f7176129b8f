#include "io/torch/torch_checkpoint.h"

#include <c10/core/CPUAllocator.h>
#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <unordered_map>

#include "clip/error.h"
#include "io/pickle.h"
#include "util/file_io.h"

namespace clip::io {
namespace {

namespace pk = pickle;

torch::ScalarType scalar_type(DType t) {
  switch (t) {
    case DType::kF64: return torch::kFloat64;
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kI64: return torch::kInt64;
    case DType::kI32: return torch::kInt32;
    case DType::kI16: return torch::kInt16;
    case DType::kI8: return torch::kInt8;
    case DType::kU8: return torch::kUInt8;
    case DType::kBool: return torch::kBool;
  }
  throw Error("internal: unknown dtype", ErrorKind::kInternal);
}

// The first line of a libtorch error, without its C++ backtrace.
std::string short_message(const std::exception& e) {
  const auto* ce = dynamic_cast<const c10::Error*>(&e);
  std::string m = ce ? ce->what_without_backtrace() : e.what();
  const size_t nl = m.find('\n');
  if (nl != std::string::npos) m.resize(nl);
  return m;
}

// The first `n` bytes of a file (fewer when it is shorter).
std::string read_head(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    const int err = errno;
    throw Error(path + ": cannot open: " + std::strerror(err), util::open_error_kind(err));
  }
  std::string s(n, '\0');
  f.read(&s[0], static_cast<std::streamsize>(n));
  s.resize(static_cast<size_t>(f.gcount()));
  return s;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    throw Error(path + ": cannot open: " + std::strerror(err), util::open_error_kind(err));
  }
  return static_cast<uint64_t>(st.st_size);
}

bool is_zip(const std::string& head) { return head.size() >= 4 && head.compare(0, 4, "PK\x03\x04") == 0; }

bool is_safetensors(const std::string& head, uint64_t size) {
  if (head.size() < 9 || head[8] != '{') return false;
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<uint8_t>(head[i])) << (8 * i);
  return n >= 2 && n <= size - 8;
}

// A tensor over `storage` (bytes) as described by `t`; the extent was checked by as_tensor.
torch::Tensor make_tensor(const c10::Storage& storage, const pk::TensorRef& t) {
  return torch::empty({0}, torch::TensorOptions().dtype(scalar_type(t.dtype)))
      .set_(storage, t.offset, t.sizes, t.strides);
}

// Storages shared between tensors: one storage per key, with its dtype checked.
struct StorageCache {
  struct Entry {
    c10::Storage storage;
    DType dtype;
  };
  std::unordered_map<std::string, Entry> entries;
};

c10::Storage storage_from_bytes(at::DataPtr data, size_t bytes) {
  return c10::Storage(c10::Storage::use_byte_size_t(), bytes, std::move(data), nullptr, false);
}

// Checks the storage of `t` (named `where`) holds `bytes` bytes, enough for its elements.
void check_storage_bytes(const pk::TensorRef& t, uint64_t bytes, const std::string& where, const std::string& record) {
  const uint64_t es = dtype_size(t.dtype);
  if (static_cast<uint64_t>(t.storage_numel) > bytes / es)
    throw Error(where + ": record " + record + " holds " + std::to_string(bytes) + " bytes, but its storage has " +
                std::to_string(t.storage_numel) + " " + dtype_name(t.dtype) + " elements (" +
                std::to_string(static_cast<uint64_t>(t.storage_numel) * es) + " bytes)");
}

using ZipReader = caffe2::serialize::PyTorchStreamReader;

// libtorch's zip reader over `path` (it only reads records: nothing in them is run).
std::unique_ptr<ZipReader> open_zip(const std::string& path, const char* expected) {
  try {
    return std::make_unique<ZipReader>(path);
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read the zip archive (truncated or not a " + expected + "?): " + short_message(e));
  }
}

// data.pkl parsed by our unpickler with `allow` as its allow-list, after the byteorder check.
pk::Pickle read_data_pickle(ZipReader& reader, const std::string& path, pk::GlobalFilter allow) {
  if (reader.hasRecord("byteorder")) {
    auto [data, n] = reader.getRecord("byteorder");
    const std::string order(static_cast<const char*>(data.get()), n);
    if (order != "little")
      throw Error(path + ": byteorder record says \"" + order + "\"; only little-endian files are supported",
                  ErrorKind::kUnsupported);
  }
  if (!reader.hasRecord("data.pkl")) throw Error(path + ": the zip archive has no data.pkl record");
  auto [pkl, pkl_size] = reader.getRecord("data.pkl");
  pk::UnpickleOptions options;
  options.allow_global = allow;
  return pk::unpickle(static_cast<const uint8_t*>(pkl.get()), pkl_size, path + ": data.pkl", options);
}

// The tensors of `entries`, their storages read from the archive's data/<key> records (each
// record once, however many tensors share it).
NamedTensors read_zip_tensors(ZipReader& reader, const std::vector<std::pair<std::string, pk::TensorRef>>& entries,
                              const std::string& path) {
  StorageCache cache;
  NamedTensors out;
  out.reserve(entries.size());
  for (const auto& [name, t] : entries) {
    const std::string where = path + ": tensor \"" + name + "\"";
    auto it = cache.entries.find(t.storage_key);
    if (it == cache.entries.end()) {
      const std::string record = "data/" + t.storage_key;
      if (!reader.hasRecord(record)) throw Error(where + ": record " + record + " is missing from the archive");
      auto [data, bytes] = reader.getRecord(record);
      check_storage_bytes(t, bytes, where, record);
      it =
          cache.entries.emplace(t.storage_key, StorageCache::Entry{storage_from_bytes(std::move(data), bytes), t.dtype})
              .first;
    } else {
      if (it->second.dtype != t.dtype)
        throw Error(where + ": storage \"" + t.storage_key + "\" is used as " + dtype_name(it->second.dtype) + " and " +
                    dtype_name(t.dtype));
      check_storage_bytes(t, it->second.storage.nbytes(), where, "data/" + t.storage_key);
    }
    out.emplace_back(name, make_tensor(it->second.storage, t));
  }
  return out;
}

// Runs `read`, turning libtorch's exceptions (a corrupt record, ...) into clip::Error.
template <typename F>
NamedTensors wrapping_zip_errors(const std::string& path, F read) {
  try {
    return read();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read the zip archive: " + short_message(e));
  }
}

NamedTensors read_zip_state_dict(const std::string& path) {
  const std::unique_ptr<ZipReader> reader = open_zip(path, "torch.save file");
  return wrapping_zip_errors(path, [&] {
    if (reader->hasRecord("constants.pkl"))
      throw Error(path + ": a TorchScript archive, not a torch.save file (it has a constants.pkl record)");
    const pk::Pickle p = read_data_pickle(*reader, path, &pk::checkpoint_global_allowed);
    return read_zip_tensors(*reader, pk::find_state_dict(p, path + ": data.pkl"), path);
  });
}

// A read-only memory map of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      throw Error(path + ": cannot open: " + std::strerror(err), util::open_error_kind(err));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw Error(path + ": cannot stat: " + std::strerror(errno), ErrorKind::kIo);
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw Error(path + ": cannot map: " + std::strerror(errno), ErrorKind::kIo);
      }
      data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

NamedTensors read_legacy_state_dict(const std::string& path) {
  const MappedFile f(path);
  const pk::LegacyLayout layout = pk::parse_legacy_torch(f.data(), f.size(), path);
  const auto entries = pk::find_state_dict(layout.main, path);
  std::unordered_map<std::string, const pk::LegacyStorage*> by_key;
  for (const auto& s : layout.storages) by_key.emplace(s.key, &s);
  StorageCache cache;
  NamedTensors out;
  for (const auto& [name, t] : entries) {
    const std::string where = path + ": tensor \"" + name + "\"";
    auto it = cache.entries.find(t.storage_key);
    if (it == cache.entries.end()) {
      auto s = by_key.find(t.storage_key);
      if (s == by_key.end()) throw Error(where + ": storage \"" + t.storage_key + "\" is missing from the file");
      check_storage_bytes(t, s->second->bytes, where, "storage \"" + t.storage_key + "\"");
      const size_t bytes = static_cast<size_t>(s->second->bytes);
      c10::Storage storage(c10::Storage::use_byte_size_t(), bytes, c10::GetCPUAllocator(), false);
      if (bytes) std::memcpy(storage.data(), f.data() + s->second->offset, bytes);
      it = cache.entries.emplace(t.storage_key, StorageCache::Entry{std::move(storage), t.dtype}).first;
    } else {
      if (it->second.dtype != t.dtype)
        throw Error(where + ": storage \"" + t.storage_key + "\" is used as " + dtype_name(it->second.dtype) + " and " +
                    dtype_name(t.dtype));
      check_storage_bytes(t, it->second.storage.nbytes(), where, "storage \"" + t.storage_key + "\"");
    }
    out.emplace_back(name, make_tensor(it->second.storage, t));
  }
  return out;
}

}  // namespace

const char* checkpoint_format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::kSafetensors: return "safetensors";
    case CheckpointFormat::kTorchZip: return "torch.save zip archive";
    case CheckpointFormat::kTorchScript: return "TorchScript archive";
    case CheckpointFormat::kLegacyTorch: return "legacy torch.save file";
    case CheckpointFormat::kUnknown: return "unknown";
  }
  return "unknown";
}

CheckpointFormat detect_checkpoint_format(const std::string& path) {
  const std::string head = read_head(path, 16);
  const auto* h = reinterpret_cast<const uint8_t*>(head.data());
  if (pk::looks_like_legacy_torch(h, head.size())) return CheckpointFormat::kLegacyTorch;
  if (is_zip(head)) {
    try {
      caffe2::serialize::PyTorchStreamReader reader(path);
      if (reader.hasRecord("constants.pkl")) return CheckpointFormat::kTorchScript;
      for (const std::string& r : reader.getAllRecords())
        if (r.compare(0, 5, "code/") == 0) return CheckpointFormat::kTorchScript;
    } catch (const std::exception&) {
      // Broken or not torch's: the torch.save reader reports why.
    }
    return CheckpointFormat::kTorchZip;
  }
  if (is_safetensors(head, file_size(path))) return CheckpointFormat::kSafetensors;
  return CheckpointFormat::kUnknown;
}

NamedTensors read_torch_state_dict(const std::string& path) {
  const std::string head = read_head(path, 16);
  const auto* h = reinterpret_cast<const uint8_t*>(head.data());
  if (pk::looks_like_legacy_torch(h, head.size())) return read_legacy_state_dict(path);
  if (!is_zip(head)) {
    if (head.empty()) throw Error(path + ": empty file, expected a torch.save zip archive");
    if (is_safetensors(head, file_size(path))) throw Error(path + ": a safetensors file, not a torch.save archive");
    if (h[0] == 0x80)
      throw Error(path + ": a bare pickle without torch.save's magic number, expected a torch.save zip archive");
    throw Error(
        path +
        ": not a torch.save file (expected a zip archive starting with PK\\x03\\x04, or a legacy torch.save pickle)");
  }
  return read_zip_state_dict(path);
}

// Only data.pkl and the data/ records are read: never code/ (the TorchScript source) nor
// constants.pkl (traced constants such as the causal mask, which are no weights).
NamedTensors read_torchscript_state_dict(const std::string& path) {
  (void)read_head(path, 4);  // a clear error for a missing file
  const std::unique_ptr<ZipReader> reader = open_zip(path, "TorchScript archive");
  return wrapping_zip_errors(path, [&] {
    const pk::Pickle p = read_data_pickle(*reader, path, &pk::torchscript_global_allowed);
    return read_zip_tensors(*reader, pk::find_module_tensors(p, path + ": data.pkl"), path);
  });
}

}  // namespace clip::io
