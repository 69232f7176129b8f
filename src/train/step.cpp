#include "train/step.h"

#include "train/precision.h"

namespace clip::train {
namespace {

std::pair<torch::Tensor, torch::Tensor> encode(model::ClipModuleImpl& m, Precision precision, torch::Device device,
                                               const torch::Tensor& images, const torch::Tensor& tokens) {
  AutocastScope autocast(precision, device);
  torch::Tensor i = at_least_fp32(m.encode_image(images, nullptr));
  torch::Tensor t = at_least_fp32(m.encode_text(tokens, nullptr));
  return {i / i.norm(2, -1, true), t / t.norm(2, -1, true)};
}

}  // namespace

double accumulate_gradients(model::ClipModuleImpl& m, Precision precision, torch::Device device,
                            const torch::Tensor& images, const torch::Tensor& tokens, int64_t micro_batches,
                            const LossFn& loss_fn) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(micro_batches, images.size(0)));
  if (chunks == 1) {
    auto [i, t] = encode(m, precision, device, images, tokens);
    torch::Tensor loss = loss_fn(i, t, m.logit_scale);
    loss.backward();
    return loss.item<double>();
  }
  const std::vector<torch::Tensor> image_chunks = images.chunk(chunks), token_chunks = tokens.chunk(chunks);
  std::vector<torch::Tensor> cached_i, cached_t;
  {
    torch::NoGradGuard no_grad;
    for (int64_t j = 0; j < chunks; ++j) {
      auto [i, t] = encode(m, precision, device, image_chunks[j], token_chunks[j]);
      cached_i.push_back(i);
      cached_t.push_back(t);
    }
  }
  double value = 0;
  for (int64_t j = 0; j < chunks; ++j) {
    auto [i, t] = encode(m, precision, device, image_chunks[j], token_chunks[j]);
    std::vector<torch::Tensor> all_i = cached_i, all_t = cached_t;
    all_i[j] = i;
    all_t[j] = t;
    torch::Tensor loss = loss_fn(torch::cat(all_i), torch::cat(all_t), j == 0 ? m.logit_scale : m.logit_scale.detach());
    loss.backward();
    if (j == 0) value = loss.item<double>();
  }
  return value;
}

}  // namespace clip::train
