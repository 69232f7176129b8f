// The tensors an objective other than the contrastive one trains beside the model (a weight and a
// bias): bow-predict's word head, caption's image prefix. They are checkpointed with the run,
// broadcast from rank 0, optimized with the model, and saved beside it at the end.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "clip/train.h"

namespace clip::train {

struct ObjectiveHead {
  torch::Tensor weight, bias;
  bool defined() const { return weight.defined(); }
};

// "contrastive", "bow-predict" or "caption": as --objective spells it.
const char* objective_name(Objective objective);

// Where a run saves the head (RUN/<objective>_head.safetensors: "weight", "bias" in fp32, the
// objective in the metadata); empty for the contrastive objective, which has none.
std::string objective_head_file(Objective objective);
void save_objective_head(const ObjectiveHead& head, Objective objective, const std::string& path);

// The micro-batch loop of the head objectives, whose losses are means over rows: (images, tokens)
// in `micro_batches` chunks, each chunk's loss_of backpropagated weighted by its share of the
// rows, so the gradients are the whole batch's. Returns the batch's loss.
using ChunkLoss = std::function<torch::Tensor(const torch::Tensor& images, const torch::Tensor& tokens)>;
double accumulate_mean_loss(const torch::Tensor& images, const torch::Tensor& tokens, int64_t micro_batches,
                            const ChunkLoss& loss_of);

}  // namespace clip::train
