// Stacking preprocessed images into the model's input batch: the one copy the embedder, the index
// builder and the server's handlers share.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace clip::model {

// [n, 3, size, size] float32 CPU tensor of `inputs` (each image::Preprocessed::input, float32
// [3, size, size]) in order. An input of another length is a bug of the caller: clip::Error,
// kind kInternal.
torch::Tensor stack_image_inputs(const std::vector<const std::vector<float>*>& inputs, int64_t size);

}  // namespace clip::model
