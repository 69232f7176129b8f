// Quantized checkpoints (`clip convert --dtype int8`): the weights that int8 inference runs in
// int8 (model/quantize.h: the transformer linears of both towers, the ViT's projections) stored
// as signed 8-bit with one float32 scale per output channel, the other matrices as float16, and
// vectors (biases, LayerNorm, logit_scale) as float32.
//
// Layout, in one safetensors file: a quantized tensor NAME is stored as I8 with NAME's shape,
// beside NAME.int8_scale, F32, shaped to broadcast over it: [N, 1] for a linear's [N, K] weight
// (one scale per row), [1, M] for a projection stored [K, M] (one per column). NAME's values are
// NAME × NAME.int8_scale. The scales are the ones int8 inference computes (max|channel| / 127), so
// an int8 run of the file quantizes its weights back to the same integers.
#pragma once

#include <map>
#include <string>

#include "clip/model.h"

namespace clip::model {

inline constexpr const char* kInt8ScaleSuffix = ".int8_scale";

// Whether int8 inference runs NAME (an OpenAI key name) in int8, so a quantized file stores it so.
bool stored_as_int8(const std::string& name);

// The tensors of a quantized file, from a model's float state dict (OpenAI key names).
StateDict quantize_for_saving(const StateDict& weights);

// Removes the NAME.int8_scale entries of a file's tensors and returns them by NAME, NAME staying
// int8. Validates the pairs (dtypes, shapes, finite positive scales) and refuses a NAME that
// int8 inference runs stored int8 without its scale; `source` names the file in errors.
std::map<std::string, torch::Tensor> take_int8_scales(StateDict& tensors, const std::string& source);

// NAME's float32 values from its int8 values and its scales (as take_int8_scales returns them).
torch::Tensor dequantize_int8(const torch::Tensor& values, const torch::Tensor& scales);

// Replaces each NAME / NAME.int8_scale pair of a file's tensors by NAME's float32 values
// (take_int8_scales, then dequantize_int8).
void dequantize_int8_tensors(StateDict& tensors, const std::string& source);

}  // namespace clip::model
