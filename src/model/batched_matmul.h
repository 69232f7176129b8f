// Batched matrix products for attention, through oneDNN's matmul primitive on the CPU.
//
// Why: libtorch 1.13 without MKL computes an fp32 bmm as one BLAS call per matrix, each behind a
// select and its checks; attention over 256 images × 2 heads of 17 tokens runs 512 tiny gemms
// per product, and the overhead dwarfs the arithmetic (the demo's fp32 training step spent most
// of its time there). oneDNN takes the whole batch in one call and reads strided views as they
// are (the heads split from [N, L, H·d] and kᵀ need no copy).
#pragma once

#include <torch/torch.h>

namespace clip::model {

// a: [..., M, K], b: [..., K, N] with the same leading (batch) sizes, on the CPU, both fp32 or
// both bf16 (f32 accumulation, bf16 result). Returns a new contiguous [..., M, N]. Any other
// case (CUDA, other types, broadcasting, a layout oneDNN refuses) is computed by torch::matmul.
// No autograd.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

// The product as attention uses it: differentiable (the backward is two more batched products),
// and under CPU bf16 autocast both sides are cast to bf16 first, as autocast does for matmul.
torch::Tensor attention_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace clip::model
