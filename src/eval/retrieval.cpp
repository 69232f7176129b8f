// Image↔text retrieval with a model: embed the captions, score them against the image features,
// rank (the metrics are retrieval_metrics, src/eval/metrics.cpp).
#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/eval.h"

namespace clip::eval {

RetrievalMetrics retrieval(const Model& model, const torch::Tensor& image_features,
                           const std::vector<std::string>& captions, const std::vector<int64_t>& text_to_image,
                           int threads) {
  if (captions.size() != text_to_image.size())
    throw Error("retrieval: " + std::to_string(captions.size()) + " captions but " +
                std::to_string(text_to_image.size()) + " image indices; expected one image index per caption");
  const Embedder embedder(model, threads);
  const torch::Tensor text = normalize_rows(embedder.embed_texts(captions)).to(torch::kCPU, torch::kFloat32);
  return retrieval_metrics(torch::matmul(image_features, text.t()), text_to_image);
}

}  // namespace clip::eval
