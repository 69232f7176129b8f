// Comparing tensors in tests: the error relative to the reference's scale, in double.
#pragma once

#include <torch/torch.h>

#include <algorithm>

namespace clip::test {

// max|a - b| / max(1e-6, max|b|)
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return (a64 - b64).abs().max().item<double>() / std::max(1e-6, b64.abs().max().item<double>());
}

}  // namespace clip::test
