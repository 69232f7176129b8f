// Image features of a data set: decoding and preprocessing on a thread pool, double-buffered
// against the model (batch k+1 is prepared while batch k is encoded), bad examples skipped.
#include <cstring>
#include <future>

#include "clip/error.h"
#include "clip/eval.h"
#include "eval/feature_cache.h"
#include "util/thread_pool.h"

namespace clip::eval {
namespace {

// One batch, preprocessed: the model input of the good examples (in order) and what was skipped.
struct Prepared {
  std::vector<float> input;  // [kept, 3, R, R]
  std::vector<size_t> indices;
  std::vector<int64_t> labels;
  std::vector<std::vector<std::string>> captions;
  std::vector<SkippedExample> skipped;
};

Prepared prepare(const data::Dataset& dataset, size_t begin, size_t count, const image::PreprocessOptions& pre,
                 const ExtractOptions& o, util::ThreadPool& pool) {
  const size_t per_image = static_cast<size_t>(3) * pre.size * pre.size;
  std::vector<float> input(count * per_image);
  std::vector<std::string> errors(count);
  std::vector<data::Example> examples(count);
  pool.parallel_for(count, [&](size_t i) {
    data::Example& ex = examples[i];
    try {
      ex = dataset.at(begin + i);
      if (!ex.ok()) {
        errors[i] = ex.error;
        return;
      }
      const image::Image img = data::decode_example_image(ex, o.decode);
      const image::Rgb8 rgb = image::resize_crop(img, pre);
      const std::vector<float> v = image::normalize(rgb, pre.mean, pre.std);
      std::memcpy(&input[i * per_image], v.data(), per_image * sizeof(float));
      ex.image_bytes.clear();  // no longer needed; keeps the batch small
      ex.pixels = {};
    } catch (const std::exception& e) {
      // One bad image (corrupt file, too many pixels, out of memory for it) must not end the run.
      errors[i] = e.what();
    }
  });
  Prepared p;
  p.input.reserve(count * per_image);
  for (size_t i = 0; i < count; ++i) {
    if (!errors[i].empty()) {
      p.skipped.push_back({begin + i, examples[i].source, errors[i]});
      continue;
    }
    p.input.insert(p.input.end(), input.begin() + i * per_image, input.begin() + (i + 1) * per_image);
    p.indices.push_back(begin + i);
    p.labels.push_back(examples[i].label);
    p.captions.push_back(std::move(examples[i].captions));
  }
  return p;
}

}  // namespace

FeatureSet extract_image_features(const Model& model, const data::Dataset& dataset, const ExtractOptions& o) {
  if (o.batch_size <= 0) throw Error("batch size must be positive, found " + std::to_string(o.batch_size));
  const int r = model.config().image_resolution;
  const image::PreprocessOptions pre = model.image_preprocess();
  const size_t n = o.limit > 0 ? std::min(o.limit, dataset.size()) : dataset.size();
  std::string cache_key;
  if (!o.cache_dir.empty()) {
    if (o.model_identity.empty())
      throw Error("a feature cache needs the model's identity (ExtractOptions::model_identity)");
    // A model's own preprocessing changes its features: it is part of the key (CLIP's default
    // is left out, so the keys of earlier caches stay valid).
    const PreprocessConfig& cfg = model.config().preprocess;
    const std::string identity =
        cfg == PreprocessConfig{} ? o.model_identity : o.model_identity + " " + preprocess_config_to_json(cfg);
    cache_key = feature_cache_key(identity, dataset.description(), n, r, precision_name(model.precision()));
    if (auto cached = load_cached_features(o.cache_dir, cache_key)) return std::move(*cached);
  }

  util::ThreadPool pool(o.threads);
  const size_t batch = static_cast<size_t>(o.batch_size);
  auto launch = [&](size_t begin) {
    return std::async(std::launch::async,
                      [&, begin] { return prepare(dataset, begin, std::min(batch, n - begin), pre, o, pool); });
  };
  FeatureSet out;
  std::vector<torch::Tensor> parts;
  std::vector<int64_t> labels;
  const bool reporting = o.progress && o.on_progress;
  if (reporting) o.on_progress("features", 0, static_cast<int64_t>(n));
  std::future<Prepared> next;
  if (n > 0) next = launch(0);
  for (size_t begin = 0; begin < n; begin += batch) {
    Prepared cur = next.get();
    if (begin + batch < n) next = launch(begin + batch);
    if (!cur.indices.empty()) {
      const int64_t kept = static_cast<int64_t>(cur.indices.size());
      torch::Tensor input = torch::from_blob(cur.input.data(), {kept, 3, r, r}, torch::kFloat32);
      torch::Tensor f;
      {
        torch::NoGradGuard no_grad;
        f = model.encode_image(input.to(model.device()));
      }
      parts.push_back(normalize_rows(f.to(torch::kFloat32)).to(torch::kCPU).contiguous());
    }
    out.indices.insert(out.indices.end(), cur.indices.begin(), cur.indices.end());
    labels.insert(labels.end(), cur.labels.begin(), cur.labels.end());
    for (auto& c : cur.captions) out.captions.push_back(std::move(c));
    for (auto& s : cur.skipped) out.skipped.push_back(std::move(s));
    if (reporting) o.on_progress("features", static_cast<int64_t>(std::min(n, begin + batch)), static_cast<int64_t>(n));
  }
  out.features = parts.empty() ? torch::empty({0, model.config().embed_dim}) : torch::cat(parts, 0);
  out.labels = torch::tensor(labels, torch::kInt64);
  if (!cache_key.empty()) save_cached_features(o.cache_dir, cache_key, out);
  return out;
}

}  // namespace clip::eval
