// CIFAR-10 and CIFAR-100 in both distributions: the binary one (records of label byte(s) + 3072
// planar RGB bytes) and the Python one (pickled dicts holding a numpy uint8 array [N, 3072] and a
// label list), read with the restricted unpickler of src/io (nothing is executed).
#include <cstring>
#include <filesystem>

#include "clip/data.h"
#include "clip/error.h"
#include "io/pickle.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::data {
namespace {

namespace fs = std::filesystem;
namespace pk = io::pickle;

constexpr size_t kPixels = 32 * 32 * 3;

// numpy arrays pickle as numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') with a BUILD
// state (version, shape, dtype, fortran, raw bytes); nothing else is needed.
bool cifar_global_allowed(std::string_view module, std::string_view name) {
  if (module == "numpy.core.multiarray" || module == "numpy._core.multiarray") return name == "_reconstruct";
  if (module == "numpy") return name == "ndarray" || name == "dtype";
  return false;
}

struct Part {
  std::vector<uint8_t> labels;
  std::string pixels;  // planar RGB, kPixels per image
};

const pk::Value* dict_entry(const pk::Pickle& p, const std::string& key) {
  // Python 2 pickles (the official files) have str keys; Python 3 re-pickles may have bytes keys.
  const pk::Value& d = p.root();
  if (d.kind != pk::Kind::kDict) return nullptr;
  for (size_t k = 0; k + 1 < d.items.size(); k += 2) {
    const pk::Value& kv = p.at(d.items[k]);
    if ((kv.kind == pk::Kind::kString || kv.kind == pk::Kind::kBytes) && kv.text == key) return &p.at(d.items[k + 1]);
  }
  return nullptr;
}

std::string bytes_of(const pk::Pickle& p, const pk::Value& v) {
  (void)p;
  if (v.kind == pk::Kind::kString || v.kind == pk::Kind::kBytes) return v.text;
  return {};
}

Part read_pickle_part(const std::string& path, const char* label_key) {
  const std::string raw = util::read_file(path);
  pk::UnpickleOptions opt;
  opt.allow_global = &cifar_global_allowed;
  const pk::Pickle p = pk::unpickle(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), path, opt);
  if (p.root().kind != pk::Kind::kDict)
    throw Error(path + ": the pickle holds " + p.describe(p.root_ref()) + ", expected a dict with data and labels");
  const pk::Value* data = dict_entry(p, "data");
  if (!data) throw Error(path + ": no \"data\" entry in the pickled dict");
  const pk::Value* labels = dict_entry(p, label_key);
  if (!labels) throw Error(path + ": no \"" + std::string(label_key) + "\" entry in the pickled dict");
  // data: the ndarray reconstruct call, with its BUILD state (1, shape, dtype, fortran, bytes).
  if (data->kind != pk::Kind::kReduce || data->state == pk::kNoRef || data->items.empty() ||
      !(p.is_global(data->items[0], "numpy.core.multiarray", "_reconstruct") ||
        p.is_global(data->items[0], "numpy._core.multiarray", "_reconstruct")))
    throw Error(path + ": \"data\" is not a pickled numpy array");
  const pk::Value& state = p.at(data->state);
  if (state.kind != pk::Kind::kTuple || state.items.size() != 5)
    throw Error(path + ": \"data\": unexpected numpy array state (expected a 5-tuple)");
  const pk::Value& shape = p.at(state.items[1]);
  const pk::Value& fortran = p.at(state.items[3]);
  Part part;
  part.pixels = bytes_of(p, p.at(state.items[4]));
  if (shape.kind != pk::Kind::kTuple || shape.items.size() != 2 ||
      p.at(shape.items[1]).i != static_cast<int64_t>(kPixels))
    throw Error(path + ": \"data\" has shape " + p.describe(state.items[1]) + ", expected (N, 3072)");
  if (fortran.kind == pk::Kind::kBool && fortran.b)
    throw Error(path + ": \"data\" is in Fortran order, expected C order");
  const int64_t n = p.at(shape.items[0]).i;
  if (n < 0 || part.pixels.size() != static_cast<size_t>(n) * kPixels)
    throw Error(path + ": \"data\" holds " + std::to_string(part.pixels.size()) + " bytes, expected " +
                std::to_string(n) + " × 3072 uint8");
  if (labels->kind != pk::Kind::kList || labels->items.size() != static_cast<size_t>(n))
    throw Error(path + ": \"" + label_key + "\" is not a list of " + std::to_string(n) + " labels");
  for (pk::Ref r : labels->items) {
    const pk::Value& v = p.at(r);
    if (v.kind != pk::Kind::kInt || v.i < 0 || v.i > 255) throw Error(path + ": a label is not an integer in 0..255");
    part.labels.push_back(static_cast<uint8_t>(v.i));
  }
  return part;
}

Part read_binary_part(const std::string& path, size_t label_bytes) {
  const std::string raw = util::read_file(path);
  const size_t record = label_bytes + kPixels;
  if (raw.empty() || raw.size() % record != 0)
    throw Error(path + ": " + std::to_string(raw.size()) + " bytes, expected a multiple of the record size " +
                std::to_string(record) + " (truncated or not a CIFAR binary file)");
  Part part;
  const size_t n = raw.size() / record;
  part.pixels.resize(n * kPixels);
  for (size_t i = 0; i < n; ++i) {
    part.labels.push_back(static_cast<uint8_t>(raw[i * record + label_bytes - 1]));  // CIFAR-100: the fine label
    std::memcpy(&part.pixels[i * kPixels], &raw[i * record + label_bytes], kPixels);
  }
  return part;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  for (std::string& s : util::split_lines(util::read_file(path))) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

std::vector<std::string> pickled_names(const std::string& path, const char* key) {
  const std::string raw = util::read_file(path);
  pk::UnpickleOptions opt;
  opt.allow_global = &cifar_global_allowed;
  const pk::Pickle p = pk::unpickle(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), path, opt);
  const pk::Value* names = dict_entry(p, key);
  if (!names || names->kind != pk::Kind::kList)
    throw Error(path + ": no \"" + std::string(key) + "\" list of class names");
  std::vector<std::string> out;
  for (pk::Ref r : names->items) out.push_back(bytes_of(p, p.at(r)));
  return out;
}

class CifarDataset : public Dataset {
 public:
  CifarDataset(std::string name, std::vector<std::string> files, std::vector<Part> parts,
               std::vector<std::string> classes)
      : name_(std::move(name)), files_(std::move(files)), classes_(std::move(classes)) {
    for (size_t f = 0; f < parts.size(); ++f) {
      for (size_t i = 0; i < parts[f].labels.size(); ++i) {
        if (parts[f].labels[i] >= classes_.size())
          throw Error(files_[f] + ": label " + std::to_string(parts[f].labels[i]) + " at record " + std::to_string(i) +
                      ", expected < " + std::to_string(classes_.size()));
        index_.push_back({static_cast<uint32_t>(f), static_cast<uint32_t>(i)});
      }
    }
    parts_ = std::move(parts);
  }
  size_t size() const override { return index_.size(); }
  std::vector<std::string> class_names() const override { return classes_; }
  std::string description() const override { return name_ + " (" + std::to_string(index_.size()) + " examples)"; }
  Example at(size_t index) const override {
    if (index >= index_.size())
      throw Error(name_ + ": example " + std::to_string(index) + " out of range (" + std::to_string(index_.size()) +
                  " examples)");
    const auto [f, i] = index_[index];
    Example ex;
    ex.source = fs::path(files_[f]).filename().string() + ":" + std::to_string(i);
    ex.label = parts_[f].labels[i];
    ex.pixels.mode = image::Mode::kRGB;
    ex.pixels.width = ex.pixels.height = 32;
    ex.pixels.pixels.resize(kPixels);
    const char* src = &parts_[f].pixels[static_cast<size_t>(i) * kPixels];
    for (size_t px = 0; px < 1024; ++px)  // planar R, G, B → interleaved RGB
      for (size_t c = 0; c < 3; ++c) ex.pixels.pixels[px * 3 + c] = static_cast<uint8_t>(src[c * 1024 + px]);
    return ex;
  }

 private:
  std::string name_;
  std::vector<std::string> files_;
  std::vector<std::string> classes_;
  std::vector<Part> parts_;
  std::vector<std::pair<uint32_t, uint32_t>> index_;
};

bool is_file(const fs::path& p) { return util::file_exists(p.string()); }

}  // namespace

std::unique_ptr<Dataset> open_cifar(const std::string& path, const std::string& split) {
  if (split != "train" && split != "test")
    throw Error("cifar: unknown split \"" + split + "\" (expected train or test)");
  const bool train = split == "train";
  // The folder itself, or the folder a release tarball extracts to inside it.
  for (const char* sub : {"", "cifar-10-batches-bin", "cifar-10-batches-py", "cifar-100-binary", "cifar-100-python"}) {
    const fs::path dir = fs::path(path) / sub;
    std::vector<std::string> files;
    std::vector<Part> parts;
    if (is_file(dir / "data_batch_1.bin") || is_file(dir / "test_batch.bin")) {  // CIFAR-10 binary
      if (train)
        for (int b = 1; b <= 5; ++b) files.push_back((dir / ("data_batch_" + std::to_string(b) + ".bin")).string());
      else files.push_back((dir / "test_batch.bin").string());
      for (const auto& f : files) parts.push_back(read_binary_part(f, 1));
      const fs::path meta = dir / "batches.meta.txt";
      std::vector<std::string> classes = is_file(meta) ? lines_of(meta.string()) : std::vector<std::string>{};
      if (classes.size() != 10) throw Error(meta.string() + ": expected the 10 CIFAR-10 class names, one a line");
      return std::make_unique<CifarDataset>("cifar10 " + split, files, std::move(parts), std::move(classes));
    }
    if (is_file(dir / "fine_label_names.txt") &&
        (is_file(dir / "train.bin") || is_file(dir / "test.bin"))) {  // CIFAR-100 binary
      files.push_back((dir / (train ? "train.bin" : "test.bin")).string());
      parts.push_back(read_binary_part(files[0], 2));
      std::vector<std::string> classes = lines_of((dir / "fine_label_names.txt").string());
      if (classes.size() != 100)
        throw Error((dir / "fine_label_names.txt").string() + ": expected 100 class names, one a line");
      return std::make_unique<CifarDataset>("cifar100 " + split, files, std::move(parts), std::move(classes));
    }
    if (is_file(dir / "batches.meta") &&
        (is_file(dir / "data_batch_1") || is_file(dir / "test_batch"))) {  // CIFAR-10 Python
      if (train)
        for (int b = 1; b <= 5; ++b) files.push_back((dir / ("data_batch_" + std::to_string(b))).string());
      else files.push_back((dir / "test_batch").string());
      for (const auto& f : files) parts.push_back(read_pickle_part(f, "labels"));
      std::vector<std::string> classes = pickled_names((dir / "batches.meta").string(), "label_names");
      return std::make_unique<CifarDataset>("cifar10 " + split, files, std::move(parts), std::move(classes));
    }
    if (is_file(dir / "meta") && (is_file(dir / "train") || is_file(dir / "test"))) {  // CIFAR-100 Python
      files.push_back((dir / split).string());
      parts.push_back(read_pickle_part(files[0], "fine_labels"));
      std::vector<std::string> classes = pickled_names((dir / "meta").string(), "fine_label_names");
      return std::make_unique<CifarDataset>("cifar100 " + split, files, std::move(parts), std::move(classes));
    }
  }
  throw Error(path +
              ": no CIFAR files found (expected data_batch_1.bin / test_batch.bin, train.bin / test.bin with "
              "fine_label_names.txt, or the Python pickles data_batch_1 / test_batch with batches.meta, train / test "
              "with meta)");
}

}  // namespace clip::data
