// The differentiable oneDNN products (model/matmul.h) against libtorch in double precision:
// values and gradients of trainable_matmul and trainable_linear on strided views, fp32 to float
// rounding, bf16 under autocast to a bf16 tolerance, and the fallbacks.
#include "model/matmul.h"

#include <gtest/gtest.h>

#include "tensor_compare.h"

#include <ATen/autocast_mode.h>

namespace {

using clip::model::onednn_matmul;
using clip::model::trainable_linear;
using clip::model::trainable_matmul;

using clip::test::relative_error;

// Leaf copies (requiring gradients) in fp32 and in double of the same random values.
std::pair<torch::Tensor, torch::Tensor> leaf_pair(torch::IntArrayRef sizes) {
  const torch::Tensor v = torch::randn(sizes);
  return {v.clone().requires_grad_(true), v.to(torch::kFloat64).requires_grad_(true)};
}

class CpuAutocastBf16 {
 public:
  CpuAutocastBf16() {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  ~CpuAutocastBf16() {
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }
};

TEST(OnednnMatmul, StridedBatchesAndBiasMatchLibtorch) {
  torch::manual_seed(1);
  // Heads split from [N, L, H·d] (a strided view) times kᵀ (another), as attention has them.
  const torch::Tensor q = torch::randn({5, 17, 2 * 16}).view({5, 17, 2, 16}).transpose(1, 2);
  const torch::Tensor k = torch::randn({5, 17, 2 * 16}).view({5, 17, 2, 16}).transpose(1, 2);
  ASSERT_FALSE(q.is_contiguous());
  const torch::Tensor y = onednn_matmul(q, k.transpose(-2, -1), torch::Tensor(), torch::kFloat32);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 2, 17, 17}));
  EXPECT_LT(relative_error(y, torch::matmul(q.to(torch::kFloat64), k.to(torch::kFloat64).transpose(-2, -1))), 1e-6);
  // 2-D with a bias, Wᵀ as a view; and a bf16 product written as fp32.
  const torch::Tensor x = torch::randn({33, 40}), w = torch::randn({24, 40}), b = torch::randn({24});
  const torch::Tensor expected = torch::addmm(b.to(torch::kFloat64), x.to(torch::kFloat64), w.to(torch::kFloat64).t());
  EXPECT_LT(relative_error(onednn_matmul(x, w.t(), b, torch::kFloat32), expected), 1e-6);
  const torch::Tensor y16 = onednn_matmul(x.to(torch::kBFloat16), w.to(torch::kBFloat16).t(), b, torch::kFloat32);
  EXPECT_EQ(y16.scalar_type(), torch::kFloat32);
  EXPECT_LT(relative_error(y16, expected), 2e-2);
  // What oneDNN does not take (broadcast batch, double) falls back to libtorch.
  const torch::Tensor a3 = torch::randn({3, 4, 5}), b2 = torch::randn({1, 5, 6});
  EXPECT_LT(relative_error(onednn_matmul(a3, b2, torch::Tensor(), torch::kFloat32), torch::matmul(a3, b2)), 1e-6);
  const torch::Tensor d = torch::randn({4, 5}, torch::kFloat64);
  EXPECT_EQ(onednn_matmul(d, d.t(), torch::Tensor(), torch::kFloat32).scalar_type(), torch::kFloat32);
}

TEST(TrainableMatmul, GradientsMatchLibtorch) {
  torch::manual_seed(2);
  auto [a, a64] = leaf_pair({3, 2, 9, 8});
  auto [b, b64] = leaf_pair({3, 2, 9, 8});
  const torch::Tensor weights = torch::randn({3, 2, 9, 9});
  const torch::Tensor y = trainable_matmul(a, b.transpose(-2, -1));
  const torch::Tensor y64 = torch::matmul(a64, b64.transpose(-2, -1));
  EXPECT_LT(relative_error(y, y64), 1e-6);
  (y * weights).sum().backward();
  (y64 * weights.to(torch::kFloat64)).sum().backward();
  EXPECT_LT(relative_error(a.grad(), a64.grad()), 1e-6);
  EXPECT_LT(relative_error(b.grad(), b64.grad()), 1e-6);
}

TEST(TrainableMatmul, Bf16UnderAutocast) {
  torch::manual_seed(3);
  auto [a, a64] = leaf_pair({4, 2, 7, 16});
  auto [b, b64] = leaf_pair({4, 2, 7, 16});
  torch::Tensor y;
  {
    CpuAutocastBf16 autocast;
    y = trainable_matmul(a, b.transpose(-2, -1));
  }
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  const torch::Tensor y64 = torch::matmul(a64, b64.transpose(-2, -1));
  EXPECT_LT(relative_error(y, y64), 2e-2);
  y.to(torch::kFloat32).sum().backward();
  y64.sum().backward();
  EXPECT_EQ(a.grad().scalar_type(), torch::kFloat32);
  EXPECT_LT(relative_error(a.grad(), a64.grad()), 2e-2);
  EXPECT_LT(relative_error(b.grad(), b64.grad()), 2e-2);
}

TEST(TrainableLinear, ValuesAndGradientsMatchLibtorch) {
  torch::manual_seed(4);
  for (bool with_bias : {true, false}) {
    auto [x, x64] = leaf_pair({6, 11, 40});
    auto [w, w64] = leaf_pair({24, 40});
    auto [b, b64] = leaf_pair({24});
    const torch::Tensor bias = with_bias ? b : torch::Tensor(), bias64 = with_bias ? b64 : torch::Tensor();
    const torch::Tensor y = trainable_linear(x, w, bias), y64 = torch::linear(x64, w64, bias64);
    EXPECT_EQ(y.sizes(), y64.sizes());
    EXPECT_LT(relative_error(y, y64), 1e-6);
    const torch::Tensor weights = torch::randn(y.sizes());
    (y * weights).sum().backward();
    (y64 * weights.to(torch::kFloat64)).sum().backward();
    EXPECT_LT(relative_error(x.grad(), x64.grad()), 1e-6);
    EXPECT_LT(relative_error(w.grad(), w64.grad()), 1e-6);
    if (with_bias) EXPECT_LT(relative_error(b.grad(), b64.grad()), 1e-6);
    else EXPECT_FALSE(b.grad().defined());
  }
}

TEST(TrainableLinear, Bf16UnderAutocastGivesFp32Gradients) {
  torch::manual_seed(5);
  auto [x, x64] = leaf_pair({64, 128});
  auto [w, w64] = leaf_pair({96, 128});
  auto [b, b64] = leaf_pair({96});
  torch::Tensor y;
  {
    CpuAutocastBf16 autocast;
    y = trainable_linear(x, w, b);
  }
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);  // as autocast's torch::linear
  const torch::Tensor y64 = torch::linear(x64, w64, b64);
  EXPECT_LT(relative_error(y, y64), 2e-2);
  y.to(torch::kFloat32).sum().backward();
  y64.sum().backward();
  for (const torch::Tensor& g : {x.grad(), w.grad(), b.grad()}) EXPECT_EQ(g.scalar_type(), torch::kFloat32);
  EXPECT_LT(relative_error(x.grad(), x64.grad()), 2e-2);
  EXPECT_LT(relative_error(w.grad(), w64.grad()), 2e-2);
  EXPECT_LT(relative_error(b.grad(), b64.grad()), 1e-6);  // the bias gradient is summed in fp32
}

TEST(TrainableLinear, FrozenWeightsGetNoGradientAndOtherTypesFallBack) {
  torch::manual_seed(6);
  const torch::Tensor x = torch::randn({5, 8}).requires_grad_(true), w = torch::randn({3, 8}), b = torch::randn({3});
  trainable_linear(x, w, b).sum().backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
  const torch::Tensor d = torch::randn({5, 8}, torch::kFloat64), wd = torch::randn({3, 8}, torch::kFloat64);
  EXPECT_LT(relative_error(trainable_linear(d, wd, torch::Tensor()), torch::linear(d, wd)), 1e-12);
}

}  // namespace
