// The precision the loss is computed in: features from a bf16/f16 autocast come back as fp32;
// fp32 and fp64 stay as they are (a model trained in double keeps its precision to the loss).
#pragma once

#include <torch/torch.h>

namespace clip::train {

inline torch::Tensor at_least_fp32(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kFloat32 || type == torch::kFloat64 ? t : t.to(torch::kFloat32);
}

}  // namespace clip::train
