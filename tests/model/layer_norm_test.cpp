// The inference LayerNorm (model/layer_norm.h) against torch's layer_norm in double: fp32 output to
// 2e-6 relative, bf16 output the fp32 output rounded to nearest; and the inputs it leaves to libtorch.
#include "model/layer_norm.h"

#include <gtest/gtest.h>

#include "tensor_compare.h"

namespace {

using clip::model::layer_norm_rows;
using clip::model::layer_norm_rows_applies;
using clip::test::relative_error;

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& g, const torch::Tensor& b, double eps) {
  return torch::layer_norm(x.to(torch::kFloat64), {x.size(-1)}, g.to(torch::kFloat64), b.to(torch::kFloat64), eps);
}

TEST(LayerNormRows, MatchesTorchInDouble) {
  c10::InferenceMode inference;
  torch::manual_seed(7);
  // Widths with and without a tail past the sixteen partial sums; one row, many rows (threads).
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{1, 7, 512}, {3, 50, 768}, {5, 37}, {1, 1}, {400, 1024}}) {
    const int64_t d = shape.back();
    // An offset larger than the spread: a one-pass variance would lose digits here.
    const torch::Tensor x = 3 * torch::randn(shape) + 40, g = torch::randn({d}), b = torch::randn({d});
    for (double eps : {1e-5, 1e-6}) {
      const torch::Tensor want = reference(x, g, b, eps);
      const torch::Tensor y = layer_norm_rows(x, g, b, eps, torch::kFloat32);
      EXPECT_EQ(y.scalar_type(), torch::kFloat32);
      ASSERT_EQ(y.sizes(), x.sizes());
      EXPECT_LT(relative_error(y, want), d == 1 ? 1e-6 : 2e-6) << "width " << d;
      const torch::Tensor y16 = layer_norm_rows(x, g, b, eps, torch::kBFloat16);
      EXPECT_EQ(y16.scalar_type(), torch::kBFloat16);
      // bf16 keeps 8 significant bits: each value within 2^-8 of itself (plus the fp32 error).
      const torch::Tensor err = (y16.to(torch::kFloat64) - want).abs();
      const double fp32_error = 2e-6 * want.abs().max().item<double>();
      EXPECT_TRUE((err <= want.abs() * (1.0 / 256) + fp32_error).all().item<bool>()) << "width " << d;
      // And it is the fp32 result rounded to nearest (as a cast rounds), not truncated.
      EXPECT_TRUE(torch::equal(y16, y.to(torch::kBFloat16))) << "width " << d;
    }
  }
}

TEST(LayerNormRows, LeavesOtherInputsToLibtorch) {
  const torch::Tensor x = torch::randn({2, 8}), g = torch::ones({8}), b = torch::zeros({8});
  {
    c10::InferenceMode inference;
    EXPECT_TRUE(layer_norm_rows_applies(x, g, b));
    EXPECT_FALSE(layer_norm_rows_applies(x.t(), torch::ones({2}), torch::zeros({2})));  // not contiguous
    EXPECT_FALSE(layer_norm_rows_applies(x.to(torch::kFloat64), g, b));
    EXPECT_FALSE(layer_norm_rows_applies(x, torch::ones({7}), b));
    EXPECT_FALSE(layer_norm_rows_applies(x, g, torch::Tensor()));
    EXPECT_FALSE(layer_norm_rows_applies(torch::randn({2, 0}), torch::ones({0}), torch::zeros({0})));
    EXPECT_THROW(layer_norm_rows(x.to(torch::kFloat64), g, b, 1e-5, torch::kFloat32), c10::Error);
  }
  EXPECT_FALSE(layer_norm_rows_applies(x.requires_grad_(true), g, b));  // autograd on: training
}

}  // namespace
