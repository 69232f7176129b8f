// Symmetric int8 quantization for the int8 inference path (model/fast_linear.h, LinearCompute::kInt8).
//
// Weights: signed 8-bit per output channel, q = round(w / s) with s = max|w_row| / 127, so each
// row of a linear's [N, K] weight uses the full range [-127, 127] (an all-zero row gets s = 1).
// Activations: signed 8-bit per token (one scale per row of the [M, K] input, s = max|x_row| / 127),
// quantized at run time. Per token, not per tensor: with one scale per tensor the text towers
// missed the accuracy bar (feature cosine 0.9976-0.9992 against fp32 on the fixture models; per
// token 0.9996+, as a simulation of both in PyTorch predicted), because one row with large values
// coarsens every other row. oneDNN 2.6 (Debian's) has no fast int8 kernel for a per-row scale
// inside the product, so the row scales are applied by a second, elementwise pass
// (model/fast_linear.cpp). Rounding is to nearest, ties to even (std::nearbyint), both for weights
// and activations.
#pragma once

#include <torch/torch.h>

namespace clip::model {

struct QuantizedWeight {
  torch::Tensor values;  // int8 [N, K]
  torch::Tensor scales;  // fp32 [N]: w ≈ values · scales (per row)
};

// w: a floating-point [N, K] tensor on the CPU. Non-finite weights are refused (clip::Error).
QuantizedWeight quantize_per_channel(const torch::Tensor& w);

// x: fp32 or bf16, contiguous, on the CPU, seen as rows of its last dimension. Writes
// round(x_row / s_row) into q (int8, same shape as x, contiguous) and returns the scales, fp32 [M]
// for the M rows: s_row = max|x_row| / 127 (1 for a row of zeros).
torch::Tensor quantize_per_row(const torch::Tensor& x, torch::Tensor& q);

}  // namespace clip::model
