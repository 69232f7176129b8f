// AdamW with one pass over memory per parameter: torch::optim::AdamW (libtorch 1.13) runs about
// ten element-wise kernels per parameter (decay, two moment updates, sqrt, division, eps, the
// update), each reading and writing the whole tensor, and allocates two temporaries; on a small
// model with a 49,408-row token embedding that is most of the optimizer's time. This one reads
// the weight, gradient and both moments once and writes them once, over all cores.
//
// Same state (AdamWParamState: step, exp_avg, exp_avg_sq) and the same options as
// torch::optim::AdamW, so checkpoints (src/train/checkpoint.cpp, which hold that state) are
// interchangeable. The arithmetic follows
// libtorch's AdamW step in float with its scalar factors; results agree to float rounding. A
// parameter that is not a contiguous fp32 CPU tensor (or whose gradient is not), or a group with
// amsgrad, takes the tensor-operation path.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace clip::train {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace clip::train
