#include "eval/feature_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace clip::eval {
namespace {

namespace fs = std::filesystem;

// FNV-1a, 64 bits: a short file name for the key (the key itself is checked on load).
std::string hash_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string stem(const std::string& dir, const std::string& key) { return dir + "/features-" + hash_hex(key); }

std::string file_identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw Error(path + ": cannot read the file's size and time (for the feature cache key)");
  return path + "|" + std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

std::string model_file_identity(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return file_identity(path);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.is_regular_file(ec)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::string id;
  for (const auto& f : files) id += file_identity(f) + ";";
  return id;
}

std::string feature_cache_key(const std::string& model_identity, const std::string& dataset_description, size_t count,
                              int resolution, const std::string& precision) {
  return "model=" + model_identity + "\ndataset=" + dataset_description + "\ncount=" + std::to_string(count) +
         "\nresolution=" + std::to_string(resolution) + "\nprecision=" + precision + "\nformat=1";
}

std::optional<FeatureSet> load_cached_features(const std::string& dir, const std::string& key) {
  const std::string s = stem(dir, key);
  if (!util::file_exists(s + ".json")) return std::nullopt;
  // A cache that cannot be read is a miss (it is rewritten), never a failed evaluation.
  try {
    const nlohmann::json meta = nlohmann::json::parse(util::read_file(s + ".json"));
    if (meta.at("key").get<std::string>() != key) return std::nullopt;
    const util::NpyArray f = util::read_npy(s + ".npy");
    const util::NpyArray l = util::read_npy(s + ".labels.npy");
    const auto indices = meta.at("indices").get<std::vector<size_t>>();
    const int64_t n = static_cast<int64_t>(indices.size());
    if (f.dtype != "<f4" || f.shape.size() != 2 || f.shape[0] != n || l.dtype != "<i8" ||
        l.shape != std::vector<int64_t>{n})
      return std::nullopt;
    FeatureSet out;
    out.features = torch::empty({f.shape[0], f.shape[1]}, torch::kFloat32);
    std::memcpy(out.features.data_ptr<float>(), f.data.data(), f.data.size());
    out.labels = torch::empty({n}, torch::kInt64);
    std::memcpy(out.labels.data_ptr<int64_t>(), l.data.data(), l.data.size());
    out.indices = indices;
    out.captions = meta.at("captions").get<std::vector<std::vector<std::string>>>();
    for (const auto& sk : meta.at("skipped"))
      out.skipped.push_back(
          {sk.at("index").get<size_t>(), sk.at("source").get<std::string>(), sk.at("reason").get<std::string>()});
    out.from_cache = true;
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void save_cached_features(const std::string& dir, const std::string& key, const FeatureSet& fs_) {
  util::create_directories(dir, "the feature cache folder");
  const std::string s = stem(dir, key);
  const torch::Tensor f = fs_.features.contiguous();
  const torch::Tensor l = fs_.labels.contiguous();
  util::write_npy(s + ".npy", "<f4", {f.size(0), f.size(1)}, f.data_ptr<float>(), f.numel() * sizeof(float));
  util::write_npy(s + ".labels.npy", "<i8", {l.size(0)}, l.data_ptr<int64_t>(), l.numel() * sizeof(int64_t));
  nlohmann::json meta = {{"key", key}, {"indices", fs_.indices}, {"captions", fs_.captions}};
  meta["skipped"] = nlohmann::json::array();
  for (const auto& sk : fs_.skipped)
    meta["skipped"].push_back({{"index", sk.index}, {"source", sk.source}, {"reason", sk.reason}});
  // Written last: its presence means the arrays beside it are complete.
  util::write_file_atomic(s + ".json", meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace clip::eval
