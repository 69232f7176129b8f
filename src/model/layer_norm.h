// LayerNorm over the last dimension for CPU inference, writing fp32 or bf16.
//
// Why: in a residual block the normalized rows go straight into a linear layer. With bf16
// compute that layer wants bf16 input, so the plain path runs LayerNorm (fp32 out) and then a cast:
// two library calls and two passes. At batch 1 the text tower makes 24 such pairs per prompt,
// each running on cold caches (the weights streamed through since the last one evicted the
// library's code and data), so their fixed costs add up. This kernel does both in one pass.
#pragma once

#include <torch/torch.h>

namespace clip::model {

// Whether layer_norm_rows serves these inputs: inference (no autograd), CPU, x fp32 and
// contiguous with at least one row element, gamma and beta fp32 of size [D] (D = x.size(-1)).
bool layer_norm_rows_applies(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta);

// (x - mean) / sqrt(var + eps) * gamma + beta per row of the last dimension (var: the biased
// variance, as torch's LayerNorm), computed in fp32 and written as `out` (kFloat32 or kBFloat16,
// rounded to nearest even, as a cast of the fp32 result would be).
torch::Tensor layer_norm_rows(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta, double eps,
                              torch::ScalarType out);

}  // namespace clip::model
