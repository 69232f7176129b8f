// Matrix products for training and attention, through oneDNN's matmul primitive on the CPU, with
// their gradients.
//
// Why not libtorch's: libtorch 1.13 without MKL computes an fp32 bmm as one BLAS call per matrix,
// each behind a select and its checks (attention over 256 images × 2 heads of 17 tokens runs 512
// tiny gemms per product), and its fp32 linear layers go to OpenBLAS, which is slow for the
// narrow products of a small transformer. oneDNN takes a whole batch in one call, reads strided
// views as they are (heads split from [N, L, H·d], kᵀ, Wᵀ need no copy) and writes the output
// type asked for (a bf16 product straight into an fp32 gradient).
#pragma once

#include <torch/torch.h>

namespace clip::model {

// a: [..., M, K], b: [..., K, N] with the same leading (batch) sizes (none for 2-D), on the CPU,
// both fp32 or both bf16 (f32 accumulation). bias: undefined or fp32 [N], added to every row.
// out: the result's type (kFloat or kBFloat16). Returns a new contiguous [..., M, N]. Anything
// else (CUDA, other types, broadcasting, a layout oneDNN refuses) is computed by libtorch.
// No autograd.
torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias,
                            torch::ScalarType out);

// The product as a training step uses it (attention, the towers' projections, the logits):
// differentiable (the backward is two more products), and under CPU bf16 autocast both sides are
// cast to bf16 first, as autocast does for torch::matmul. Keeping every product of a step out of
// OpenBLAS also keeps OpenBLAS's own threads, which spin after each call, off the cores.
torch::Tensor trainable_matmul(const torch::Tensor& a, const torch::Tensor& b);

// y = x·Wᵀ + b as a training step uses it: differentiable; in bf16 (bf16 output, f32 bias and
// accumulation) under CPU bf16 autocast, as autocast runs torch::linear; fp32 otherwise. The
// gradients come back in the types of x, W and b. Anything but a CPU fp32/bf16 x with fp32
// weights takes torch::linear.
torch::Tensor trainable_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace clip::model
