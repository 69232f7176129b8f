// QuickGELU, x·σ(1.702·x), for training: one oneDNN kernel forward (eltwise swish with α = 1.702)
// and one backward, in fp32 or bf16. Written as libtorch operations it is three kernels forward
// (scale, sigmoid, product) and about six backward, each a pass over the MLP's widest activation.
#pragma once

#include <torch/torch.h>

namespace clip::model {

// Differentiable; the result has x's type. CPU fp32/bf16 only: anything else is computed by
// libtorch operations.
torch::Tensor quick_gelu(const torch::Tensor& x);

}  // namespace clip::model
