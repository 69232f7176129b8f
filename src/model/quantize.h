// Symmetric int8 quantization for the int8 inference path (model/fast_linear.h, LinearCompute::kInt8).
//
// Weights: signed 8-bit per output channel, q = round(w / s) with s = max|w_row| / 127, so each
// row of a linear's [N, K] weight uses the full range [-127, 127] (an all-zero row gets s = 1).
// Activations: signed 8-bit per tensor, quantized at run time the same way (s = max|x| / 127).
// Per tensor, not per token: with oneDNN 2.6 (Debian's) a per-row scale can only be applied as a
// binary post-op of shape [M, 1], for which it has no int8 kernel but its reference one (about
// 1000x slower; measured), while a per-tensor scale folds into the per-channel scale vector that
// the fast (brgemm, VNNI) kernel applies with the bias and activation in one pass. Rounding is to
// nearest, ties to even (std::nearbyint), both for weights and activations.
#pragma once

#include <torch/torch.h>

namespace clip::model {

struct QuantizedWeight {
  torch::Tensor values;  // int8 [N, K]
  torch::Tensor scales;  // fp32 [N]: w ≈ values · scales (per row)
};

// w: a floating-point [N, K] tensor on the CPU. Non-finite weights are refused (clip::Error).
QuantizedWeight quantize_per_channel(const torch::Tensor& w);

// x: fp32 or bf16, contiguous, on the CPU. Writes round(x / s) into q (int8, same shape as x,
// contiguous) and returns s = max|x| / 127 (1 when x is all zeros).
float quantize_per_tensor(const torch::Tensor& x, torch::Tensor& q);

}  // namespace clip::model
