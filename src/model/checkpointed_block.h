// Gradient checkpointing of a residual block, for training: the forward keeps only the block's
// input, and the backward recomputes the block's activations before back-propagating through it.
#pragma once

#include <torch/torch.h>

namespace clip::model {

class ResidualBlockImpl;

// block.forward(x, mask) without keeping its activations: the forward runs with autograd off,
// and the backward recomputes the block with autograd on, under the autocast state of the
// forward (the parameters' gradients accumulate there; the input's gradient is returned).
// Reentrant, as torch.utils.checkpoint. The block must outlive the backward pass.
torch::Tensor checkpointed_block(ResidualBlockImpl& block, const torch::Tensor& x, const torch::Tensor& mask);

}  // namespace clip::model
