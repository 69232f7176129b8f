#include "clip/embedder.h"

#include "clip/error.h"
#include "model/image_batch.h"

namespace clip {

Embedder::Embedder(const Model& model, int threads) : Embedder(model, tokenizer_for_model(model.config()), threads) {}

Embedder::Embedder(const Model& model, Tokenizer tokenizer, int threads)
    : model_(model), tokenizer_(std::move(tokenizer)), threads_(threads) {}

image::PreprocessOptions Embedder::preprocess_options() const { return model_.image_preprocess(); }

image::PreprocessOptions Model::image_preprocess() const {
  const PreprocessConfig& p = config_.preprocess;
  image::PreprocessOptions o;
  o.size = config_.image_resolution;
  o.filter = p.interpolation == "bilinear" ? image::Filter::kBilinear : image::Filter::kBicubic;
  o.resize_mode = p.resize_mode == "squash"    ? image::ResizeMode::kSquash
                  : p.resize_mode == "longest" ? image::ResizeMode::kLongest
                                               : image::ResizeMode::kShortest;
  o.fill = static_cast<uint8_t>(p.fill_color);
  o.mean = p.mean;
  o.std = p.std;
  return o;
}

torch::Tensor Embedder::embed_image_files(const std::vector<std::string>& paths, int batch_size) const {
  if (batch_size <= 0) throw Error("batch size must be positive, found " + std::to_string(batch_size));
  const int64_t n = static_cast<int64_t>(paths.size()), r = model_.config().image_resolution;
  std::vector<torch::Tensor> out;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min<int64_t>(batch_size, n - begin);
    const std::vector<std::string> chunk(paths.begin() + begin, paths.begin() + begin + count);
    const std::vector<image::BatchItem> items = image::preprocess_files(chunk, preprocess_options(), threads_);
    std::vector<const std::vector<float>*> inputs;
    for (const image::BatchItem& item : items) {
      if (!item.ok()) throw Error(item.error, item.error_kind);
      inputs.push_back(&item.result.input);
    }
    out.push_back(model_.encode_image(model::stack_image_inputs(inputs, r)));
  }
  if (out.empty()) return torch::empty({0, model_.config().embed_dim});
  return torch::cat(out, 0);
}

torch::Tensor Embedder::embed_texts(const std::vector<std::string>& texts, int batch_size) const {
  if (batch_size <= 0) throw Error("batch size must be positive, found " + std::to_string(batch_size));
  const int64_t n = static_cast<int64_t>(texts.size());
  std::vector<torch::Tensor> out;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min<int64_t>(batch_size, n - begin);
    const std::vector<std::string> chunk(texts.begin() + begin, texts.begin() + begin + count);
    TokenBatch tokens = tokenizer_.tokenize(chunk, model_.config().context_length, true, threads_);
    out.push_back(
        model_.encode_text(torch::from_blob(tokens.ids.get(), {tokens.rows, tokens.context_length}, torch::kInt64)));
  }
  if (out.empty()) return torch::empty({0, model_.config().embed_dim});
  return torch::cat(out, 0);
}

std::string fill_template(const std::string& templ, const std::string& class_name) {
  if (templ.find("{}") == std::string::npos)
    throw Error("template \"" + templ + "\" has no \"{}\" where the class name goes");
  std::string out;
  for (size_t i = 0; i < templ.size();) {
    if (templ.compare(i, 2, "{}") == 0) {
      out += class_name;
      i += 2;
    } else {
      out += templ[i++];
    }
  }
  return out;
}

torch::Tensor Embedder::zero_shot_weights(const std::vector<std::string>& class_names,
                                          const std::vector<std::string>& templates) const {
  if (class_names.empty()) throw Error("zero-shot classification needs at least one class name");
  if (templates.empty()) throw Error("zero-shot classification needs at least one template");
  std::vector<std::string> prompts;
  for (const auto& c : class_names)
    for (const auto& t : templates) prompts.push_back(fill_template(t, c));
  const torch::Tensor emb = normalize_rows(embed_texts(prompts));
  const int64_t c = static_cast<int64_t>(class_names.size()), t = static_cast<int64_t>(templates.size());
  const torch::Tensor per_class = emb.view({c, t, -1}).mean(1);
  return normalize_rows(per_class).t().contiguous();
}

}  // namespace clip
