// The tensors an objective other than the contrastive one trains beside the model (a weight and a
// bias): bow-predict's word head, caption's image prefix. They are checkpointed with the run,
// broadcast from rank 0, optimized with the model, and saved beside it at the end.
#pragma once

#include <torch/torch.h>

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

}  // namespace clip::train
