// Zero-shot classification: a classifier from class names × prompt templates, applied to features.
#include <cmath>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/eval.h"

namespace clip::eval {

torch::Tensor zero_shot_classifier(const Model& model, const std::vector<std::string>& class_names,
                                   const std::vector<std::string>& templates, int threads) {
  // The Embedder already does CLIP's prompt ensembling: normalize, average, renormalize.
  const Embedder embedder(model, threads);
  return embedder.zero_shot_weights(class_names, templates).to(torch::kCPU, torch::kFloat32);
}

ZeroShotResult zero_shot(const Model& model, const FeatureSet& features, const std::vector<std::string>& class_names,
                         const std::vector<std::string>& templates, int k, int threads) {
  if (features.features.size(0) == 0) throw Error("zero-shot: no examples to classify (every example was skipped?)");
  const int64_t c = static_cast<int64_t>(class_names.size());
  const torch::Tensor labels = features.labels;
  if (labels.numel() > 0) {
    const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
    if (lo < 0) throw Error("zero-shot: the data set has examples without a label (label -1); it needs class labels");
    if (hi >= c)
      throw Error("zero-shot: label " + std::to_string(hi) + " in the data set but only " + std::to_string(c) +
                  " class names (expected one name per class, in label order)");
  }
  const torch::Tensor w = zero_shot_classifier(model, class_names, templates, threads);
  ZeroShotResult r;
  torch::NoGradGuard no_grad;
  r.logits = std::exp(model.logit_scale()) * torch::matmul(features.features, w);
  r.metrics = classification_metrics(r.logits, labels, k);
  return r;
}

}  // namespace clip::eval
