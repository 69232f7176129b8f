// CLIP's symmetric contrastive loss and SigLIP's sigmoid loss, in fp32 whatever the autocast
// (fp64 for a model in double).
#include <cmath>

#include "clip/error.h"
#include "clip/train.h"
#include "model/matmul.h"
#include "train/precision.h"

namespace clip::train {
namespace F = torch::nn::functional;
namespace {

void check_pairs(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(0) != b.size(0) || a.size(1) != b.size(1) || a.size(0) == 0)
    throw Error(std::string(what) + ": expected image and text features of the same shape [N > 0, D], found " +
                c10::str(a.sizes()) + " and " + c10::str(b.sizes()));
}

}  // namespace

torch::Tensor contrastive_loss(const torch::Tensor& image_features, const torch::Tensor& text_features,
                               const torch::Tensor& logit_scale) {
  check_pairs(image_features, text_features, "contrastive loss");
  const torch::Tensor logits = at_least_fp32(logit_scale).exp() *
                               model::trainable_matmul(at_least_fp32(image_features), at_least_fp32(text_features).t());
  const torch::Tensor labels = torch::arange(logits.size(0), logits.options().dtype(torch::kLong));
  return (F::cross_entropy(logits, labels) + F::cross_entropy(logits.t(), labels)) / 2;
}

torch::Tensor contrastive_loss_local(const torch::Tensor& local_image, const torch::Tensor& local_text,
                                     const torch::Tensor& all_image, const torch::Tensor& all_text, int64_t offset,
                                     const torch::Tensor& logit_scale) {
  check_pairs(local_image, local_text, "contrastive loss (local)");
  check_pairs(all_image, all_text, "contrastive loss (local)");
  const int64_t n = local_image.size(0);
  if (offset < 0 || offset + n > all_image.size(0))
    throw Error("contrastive loss (local): rows [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                ") are outside the global batch of " + std::to_string(all_image.size(0)));
  const torch::Tensor scale = at_least_fp32(logit_scale).exp();
  const torch::Tensor per_image =
      scale * model::trainable_matmul(at_least_fp32(local_image), at_least_fp32(all_text).t());
  const torch::Tensor per_text =
      scale * model::trainable_matmul(at_least_fp32(local_text), at_least_fp32(all_image).t());
  const torch::Tensor labels = torch::arange(offset, offset + n, per_image.options().dtype(torch::kLong));
  return (F::cross_entropy(per_image, labels) + F::cross_entropy(per_text, labels)) / 2;
}

torch::Tensor siglip_loss(const torch::Tensor& image_features, const torch::Tensor& text_features,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias) {
  check_pairs(image_features, text_features, "SigLIP loss");
  const int64_t n = image_features.size(0);
  const torch::Tensor logits =
      at_least_fp32(logit_scale).exp() *
          model::trainable_matmul(at_least_fp32(image_features), at_least_fp32(text_features).t()) +
      at_least_fp32(logit_bias);
  const torch::Tensor signs = 2 * torch::eye(n, logits.options()) - 1;
  return -F::logsigmoid(signs * logits).sum() / n;
}

}  // namespace clip::train
