#include "embed.h"

#include <algorithm>

#include "clip/error.h"
#include "model/image_batch.h"

namespace clip::python {
namespace {

void check_batch_size(int batch_size) {
  if (batch_size <= 0) throw Error("batch_size must be positive, found " + std::to_string(batch_size));
}

}  // namespace

torch::Tensor embed_image_files(const Model& model, const image::PreprocessOptions& preprocess,
                                const std::vector<std::string>& paths, int batch_size, int threads,
                                const Progress& progress) {
  check_batch_size(batch_size);
  const int64_t n = static_cast<int64_t>(paths.size());
  torch::Tensor out = torch::empty({n, model.config().embed_dim}, torch::kFloat32);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min<int64_t>(batch_size, n - begin);
    const std::vector<std::string> chunk(paths.begin() + begin, paths.begin() + begin + count);
    const std::vector<image::BatchItem> items = image::preprocess_files(chunk, preprocess, threads);
    std::vector<const std::vector<float>*> inputs;
    for (const image::BatchItem& item : items) {
      if (!item.ok()) throw Error(item.error, item.error_kind);
      inputs.push_back(&item.result.input);
    }
    out.narrow(0, begin, count).copy_(model.encode_image(model::stack_image_inputs(inputs, preprocess.size)));
    if (progress) progress(begin + count, n);
  }
  return out;
}

torch::Tensor embed_texts(const Model& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                          int batch_size, int threads, const Progress& progress) {
  check_batch_size(batch_size);
  const int64_t n = static_cast<int64_t>(texts.size());
  torch::Tensor out = torch::empty({n, model.config().embed_dim}, torch::kFloat32);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min<int64_t>(batch_size, n - begin);
    const std::vector<std::string> chunk(texts.begin() + begin, texts.begin() + begin + count);
    TokenBatch tokens = tokenizer.tokenize(chunk, model.config().context_length, true, threads);
    const torch::Tensor ids = torch::from_blob(tokens.ids.get(), {tokens.rows, tokens.context_length}, torch::kInt64);
    out.narrow(0, begin, count).copy_(model.encode_text(ids));
    if (progress) progress(begin + count, n);
  }
  return out;
}

}  // namespace clip::python
