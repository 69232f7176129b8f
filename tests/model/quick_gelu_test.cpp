// The oneDNN QuickGELU (model/quick_gelu.h) against x·σ(1.702·x) in double: value and gradient,
// fp32 to float rounding, bf16 to a bf16 tolerance, strided input.
#include "model/quick_gelu.h"

#include <gtest/gtest.h>

#include "tensor_compare.h"

namespace {

using clip::test::relative_error;

torch::Tensor reference(const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); }

TEST(QuickGelu, Fp32ValueAndGradient) {
  torch::manual_seed(1);
  const torch::Tensor v = 4 * torch::randn({37, 64}).t();  // strided, values well into both tails
  const torch::Tensor x = v.clone().requires_grad_(true), x64 = v.to(torch::kFloat64).requires_grad_(true);
  const torch::Tensor y = clip::model::quick_gelu(x), y64 = reference(x64);
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  EXPECT_LT(relative_error(y, y64), 1e-6);
  const torch::Tensor w = torch::randn(v.sizes());
  (y * w).sum().backward();
  (y64 * w.to(torch::kFloat64)).sum().backward();
  EXPECT_LT(relative_error(x.grad(), x64.grad()), 1e-6);
}

TEST(QuickGelu, Bf16ValueAndGradient) {
  torch::manual_seed(2);
  const torch::Tensor v = 3 * torch::randn({1000});
  const torch::Tensor x = v.to(torch::kBFloat16).requires_grad_(true);
  const torch::Tensor x64 = x.detach().to(torch::kFloat64).requires_grad_(true);
  const torch::Tensor y = clip::model::quick_gelu(x), y64 = reference(x64);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative_error(y, y64), 1e-2);
  y.to(torch::kFloat32).sum().backward();
  y64.sum().backward();
  EXPECT_EQ(x.grad().scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative_error(x.grad(), x64.grad()), 1e-2);
}

TEST(QuickGelu, OtherTypesUseLibtorch) {
  const torch::Tensor d = torch::randn({9}, torch::kFloat64);
  EXPECT_LT(relative_error(clip::model::quick_gelu(d), reference(d)), 1e-15);
}

}  // namespace
