// One training step's gradients: forward under the run's precision, the loss, backward — with
// gradient accumulation over micro-batches that keeps the loss of the full batch.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "clip/model.h"
#include "model/modules.h"

namespace clip::train {

// loss(image_features, text_features, logit_scale): features L2-normalized, fp32.
using LossFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;

// Accumulates into the parameters' .grad the gradient of loss(all images, all texts) and returns
// the loss. With micro_batches > 1 the batch is encoded in chunks: first every chunk without
// gradients (features cached), then each chunk again with gradients against the cached features
// of the others, so the gradient equals the full batch's while only one chunk's activations are
// alive at a time. The temperature's gradient is taken in the first pass only.
double accumulate_gradients(model::ClipModuleImpl& module, Precision precision, torch::Device device,
                            const torch::Tensor& images, const torch::Tensor& tokens, int64_t micro_batches,
                            const LossFn& loss);

}  // namespace clip::train
