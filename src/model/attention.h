// Multi-head attention's arithmetic, shared by the reference modules (modules.h) and the CPU
// inference plan (inference_plan.h).
#pragma once

#include <torch/torch.h>

namespace clip::model {

// [N, L, D] -> [N, H, L, D/H] (a view).
torch::Tensor split_heads(const torch::Tensor& x, int heads);

// [N, H, L, d] -> [N, L, H·d].
torch::Tensor merge_heads(const torch::Tensor& x);

// softmax(q·kᵀ / √d + mask)·v over [N, H, L, d], mask additive [L, L] or undefined.
// Differentiable (model/matmul.h), so training runs it too.
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& mask);

}  // namespace clip::model
