// IDX files (MNIST, Fashion-MNIST): big-endian header (0, 0, type, dims), dims × u32 sizes, then
// the data. Gzip-compressed files are recognized by their magic bytes and inflated with zlib.
#include <zlib.h>

#include <cstring>

#include "clip/data.h"
#include "clip/error.h"
#include "util/file_io.h"

namespace clip::data {
namespace {

// The whole file, inflated when it is gzip. Sizes are bounded so a gzip bomb cannot exhaust memory.
std::string read_maybe_gzip(const std::string& path) {
  std::string raw = util::read_file(path);
  if (raw.size() < 2 || static_cast<uint8_t>(raw[0]) != 0x1f || static_cast<uint8_t>(raw[1]) != 0x8b) return raw;
  constexpr size_t kMaxInflated = size_t{4} << 30;
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) throw Error(path + ": cannot start gzip decompression");
  std::string out;
  out.resize(std::max<size_t>(raw.size() * 4, 1 << 16));
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (z.total_out == out.size()) {
      if (out.size() >= kMaxInflated) {
        inflateEnd(&z);
        throw Error(path + ": decompresses to more than 4 GiB (refusing)", ErrorKind::kTooLarge);
      }
      out.resize(std::min(out.size() * 2, kMaxInflated));
    }
    z.next_out = reinterpret_cast<Bytef*>(&out[z.total_out]);
    z.avail_out = static_cast<uInt>(out.size() - z.total_out);
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string why = rc == Z_BUF_ERROR ? "truncated gzip data" : (z.msg ? z.msg : "corrupt gzip data");
      const size_t at = z.total_in;
      inflateEnd(&z);
      throw Error(path + ": " + why + " at compressed byte " + std::to_string(at));
    }
  }
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + at;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxArray {
  std::vector<uint32_t> dims;
  std::string bytes;  // the whole file; data starts at `offset`
  size_t offset = 0;
};

IdxArray read_idx(const std::string& path, size_t expected_dims) {
  IdxArray a;
  a.bytes = read_maybe_gzip(path);
  const std::string& b = a.bytes;
  if (b.size() < 4)
    throw Error(path + ": " + std::to_string(b.size()) + " bytes, too short for an IDX header (4 bytes)");
  if (b[0] != 0 || b[1] != 0) throw Error(path + ": not an IDX file (the first two bytes must be zero)");
  if (static_cast<uint8_t>(b[2]) != 0x08)
    throw Error(path + ": IDX element type " + std::to_string(static_cast<uint8_t>(b[2])) +
                ", expected 8 (unsigned byte)");
  const size_t dims = static_cast<uint8_t>(b[3]);
  if (dims != expected_dims)
    throw Error(path + ": IDX file with " + std::to_string(dims) + " dimensions, expected " +
                std::to_string(expected_dims));
  a.offset = 4 + 4 * dims;
  if (b.size() < a.offset) throw Error(path + ": truncated IDX header (" + std::to_string(b.size()) + " bytes)");
  uint64_t count = 1;
  for (size_t d = 0; d < dims; ++d) {
    a.dims.push_back(be32(b, 4 + 4 * d));
    count *= a.dims.back();
    if (count > (uint64_t{1} << 36)) throw Error(path + ": IDX sizes are implausibly large");
  }
  if (b.size() - a.offset != count)
    throw Error(path + ": the header promises " + std::to_string(count) + " bytes of data, the file holds " +
                std::to_string(b.size() - a.offset) +
                (b.size() - a.offset < count ? " (truncated)" : " (trailing data)"));
  return a;
}

class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path, std::vector<std::string> class_names,
             std::string name)
      : name_(std::move(name)), class_names_(std::move(class_names)) {
    images_ = read_idx(images_path, 3);
    labels_ = read_idx(labels_path, 1);
    count_ = images_.dims[0];
    rows_ = static_cast<int>(images_.dims[1]);
    cols_ = static_cast<int>(images_.dims[2]);
    if (rows_ == 0 || cols_ == 0) throw Error(images_path + ": images of size 0");
    if (labels_.dims[0] != count_)
      throw Error(labels_path + ": " + std::to_string(labels_.dims[0]) + " labels for " + std::to_string(count_) +
                  " images in " + images_path + " (expected as many)");
    if (!class_names_.empty())
      for (size_t i = 0; i < count_; ++i)
        if (static_cast<uint8_t>(labels_.bytes[labels_.offset + i]) >= class_names_.size())
          throw Error(labels_path + ": label " +
                      std::to_string(static_cast<uint8_t>(labels_.bytes[labels_.offset + i])) + " at index " +
                      std::to_string(i) + ", expected < " + std::to_string(class_names_.size()) + " classes");
    if (name_.empty()) name_ = "idx " + images_path;
    source_prefix_ = images_path.substr(images_path.find_last_of('/') + 1);
  }

  size_t size() const override { return count_; }
  std::vector<std::string> class_names() const override { return class_names_; }
  std::string description() const override { return name_ + " (" + std::to_string(count_) + " examples)"; }
  Example at(size_t index) const override {
    if (index >= count_)
      throw Error(name_ + ": example " + std::to_string(index) + " out of range (" + std::to_string(count_) +
                  " examples)");
    Example ex;
    ex.source = source_prefix_ + ":" + std::to_string(index);
    ex.pixels.mode = image::Mode::kL;
    ex.pixels.width = cols_;
    ex.pixels.height = rows_;
    const size_t n = static_cast<size_t>(rows_) * cols_;
    const auto* p = reinterpret_cast<const uint8_t*>(images_.bytes.data()) + images_.offset + index * n;
    ex.pixels.pixels.assign(p, p + n);
    ex.label = static_cast<uint8_t>(labels_.bytes[labels_.offset + index]);
    return ex;
  }

 private:
  std::string name_, source_prefix_;
  std::vector<std::string> class_names_;
  IdxArray images_, labels_;
  size_t count_ = 0;
  int rows_ = 0, cols_ = 0;
};

}  // namespace

std::unique_ptr<Dataset> open_idx(const std::string& images_path, const std::string& labels_path,
                                  std::vector<std::string> class_names) {
  return std::make_unique<IdxDataset>(images_path, labels_path, std::move(class_names), "");
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return kNames;
}

std::unique_ptr<Dataset> open_fashion_mnist(const std::string& split, const std::string& dir) {
  if (split != "train" && split != "test")
    throw Error("fashion-mnist: unknown split \"" + split + "\" (expected train or test)");
  const std::string stem = dir + "/" + (split == "train" ? "train" : "t10k");
  // Debian ships the files gzipped; an unpacked copy works too.
  auto pick = [](const std::string& base) {
    return util::file_exists(base + ".gz") || !util::file_exists(base) ? base + ".gz" : base;
  };
  const std::string images = pick(stem + "-images-idx3-ubyte"), labels = pick(stem + "-labels-idx1-ubyte");
  if (!util::file_exists(images))
    throw Error("fashion-mnist: " + images +
                    " not found (install the Debian package dataset-fashion-mnist, "
                    "or give the folder holding the IDX files)",
                ErrorKind::kNotFound);
  return std::make_unique<IdxDataset>(images, labels, fashion_mnist_classes(), "fashion-mnist " + split);
}

}  // namespace clip::data
