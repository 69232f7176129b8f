// What both encoders do to their inputs before the towers run, shared by the reference modules
// (modules.h) and the CPU inference plan (inference_plan.h): shape checks, and for text the end
// tokens to pool at and the positions worth computing.
#pragma once

#include <torch/torch.h>

#include "clip/config.h"

namespace clip::model {

// Throws clip::Error unless images is [N, 3, R, R] with R = config.image_resolution.
void check_images(const ModelConfig& config, const torch::Tensor& images);

struct TextBatch {
  torch::Tensor tokens;  // int64 [N, L'], contiguous: the positions the tower computes
  torch::Tensor end;     // int64 [N]: each row's end token (its largest id, the first if repeated)
};

// Checks tokens ([N, L], 1 <= L <= context_length, ids in [0, vocab_size)) and finds the end
// tokens. Unless every position is wanted (recording intermediates), the positions after the
// batch's last end token are cut: the causal mask makes them irrelevant to the pooled outputs.
TextBatch text_batch(const ModelConfig& config, const torch::Tensor& tokens, bool all_positions);

// The additive causal mask [L, L]: 0 on and below the diagonal, -inf above.
torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options);

// x[i, end[i]] for each row i of x [N, L, D].
torch::Tensor pool_at(const torch::Tensor& x, const torch::Tensor& end);

}  // namespace clip::model
