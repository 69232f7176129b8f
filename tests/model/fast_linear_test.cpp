// The oneDNN linear (model/fast_linear.h) against torch::linear + activation: fp32 to 1e-5
// relative, bf16 to a bf16 tolerance; re-packing when weights change; training keeps autograd.
#include "cpu_features.h"
#include "model/fast_linear.h"

#include <gtest/gtest.h>

#include "clip/error.h"
#include "tensor_compare.h"

#include <ATen/autocast_mode.h>

#include <thread>
#include <tuple>
#include <vector>

namespace {

using clip::model::Activation;
using clip::model::FastLinear;
using clip::model::LinearCompute;
using clip::model::reference_linear;

using clip::test::relative_error;

struct Shape {
  std::vector<int64_t> lead;  // leading dims of x
  int64_t k, n;
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {{{1}, 768, 2304},  {{1, 1}, 7, 5}, {{3, 17}, 33, 65},    {{50}, 768, 3072},
                                       {{2, 13}, 129, 1}, {{5}, 1, 9},    {{4, 50}, 3072, 768}, {{11}, 31, 257}};
  return s;
}

class FastLinearTest : public ::testing::TestWithParam<Activation> {};

TEST_P(FastLinearTest, Fp32MatchesTorchLinear) {
  const Activation act = GetParam();
  torch::manual_seed(1);
  for (const Shape& s : shapes()) {
    for (bool with_bias : {true, false}) {
      std::vector<int64_t> xs = s.lead;
      xs.push_back(s.k);
      const torch::Tensor x = torch::randn(xs), w = torch::randn({s.n, s.k}) / std::sqrt(double(s.k));
      const torch::Tensor b = with_bias ? torch::randn({s.n}) : torch::Tensor();
      FastLinear fl;
      c10::InferenceMode inference;
      const torch::Tensor got = fl.forward(x, w, b, act, LinearCompute::kFP32, torch::kFloat32);
      const torch::Tensor want = reference_linear(x, w, b, act);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LE(relative_error(got, want), 1e-5) << "K=" << s.k << " N=" << s.n << " bias=" << with_bias;
      // Through the model's entry as well (fast path chosen, fp32).
      EXPECT_LE(relative_error(fl(x, w, b, act), want), 1e-5);
    }
  }
}

TEST_P(FastLinearTest, Bf16WithinBf16Tolerance) {
  const Activation act = GetParam();
  torch::manual_seed(2);
  for (const Shape& s : shapes()) {
    std::vector<int64_t> xs = s.lead;
    xs.push_back(s.k);
    const torch::Tensor x = torch::randn(xs), w = torch::randn({s.n, s.k}) / std::sqrt(double(s.k)),
                        b = torch::randn({s.n});
    FastLinear fl;
    torch::NoGradGuard no_grad;
    const torch::Tensor want = reference_linear(x, w, b, act);
    // bf16 rounding of inputs and weights (8 bits of mantissa) through a K-term sum: a few 1e-3.
    for (torch::ScalarType out : {torch::kFloat32, torch::kBFloat16}) {
      const torch::Tensor got = fl.forward(x, w, b, act, LinearCompute::kBF16, out);
      EXPECT_EQ(got.scalar_type(), out);
      EXPECT_LE(relative_error(got, want), 2e-2) << "K=" << s.k << " N=" << s.n;
      // Against the same bf16-rounded operands in fp64, the error is the output rounding only.
      const torch::Tensor exact =
          reference_linear(x.to(torch::kBFloat16).to(torch::kFloat64), w.to(torch::kBFloat16).to(torch::kFloat64),
                           b.to(torch::kFloat64), act);
      EXPECT_LE(relative_error(got, exact), out == torch::kBFloat16 ? 8e-3 : 1e-4) << "K=" << s.k << " N=" << s.n;
    }
    // Under CPU autocast to bf16, the model's entry computes in bf16 and gives bf16 if asked.
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    const torch::Tensor auto_out = fl(x, w, b, act, /*bf16_out=*/true);
    at::autocast::set_cpu_enabled(false);
    EXPECT_EQ(auto_out.scalar_type(), torch::kBFloat16);
    EXPECT_LE(relative_error(auto_out, want), 2e-2);
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, FastLinearTest,
                         ::testing::Values(Activation::kNone, Activation::kQuickGelu, Activation::kGelu));

TEST(FastLinear, AccumulateAddsTheProductToTheOutputInPlace) {
  torch::manual_seed(5);
  c10::InferenceMode inference;
  for (const Shape& s : shapes()) {
    std::vector<int64_t> xs = s.lead, ys = s.lead;
    xs.push_back(s.k);
    ys.push_back(s.n);
    const torch::Tensor x = torch::randn(xs), w = torch::randn({s.n, s.k}) / std::sqrt(double(s.k)),
                        b = torch::randn({s.n});
    const torch::Tensor start = torch::randn(ys);
    FastLinear fl;
    torch::Tensor y = start.clone();
    const void* storage = y.data_ptr();
    fl.accumulate(x, w, b, LinearCompute::kFP32, y);
    EXPECT_EQ(y.data_ptr(), storage);
    EXPECT_LE(relative_error(y, start + reference_linear(x, w, b, Activation::kNone)), 1e-5)
        << "K=" << s.k << " N=" << s.n;
    // bf16 compute: the product of the bf16-rounded operands, added in fp32.
    torch::Tensor y16 = start.clone();
    fl.accumulate(x, w, b, LinearCompute::kBF16, y16);
    const torch::Tensor exact = start.to(torch::kFloat64) + reference_linear(x.to(torch::kBFloat16).to(torch::kFloat64),
                                                                             w.to(torch::kBFloat16).to(torch::kFloat64),
                                                                             b.to(torch::kFloat64), Activation::kNone);
    EXPECT_LE(relative_error(y16, exact), 1e-4) << "K=" << s.k << " N=" << s.n;
  }
}

TEST(FastLinear, AccumulateRejectsAnOutputOfTheWrongShapeOrType) {
  c10::InferenceMode inference;
  const torch::Tensor x = torch::randn({3, 8}), w = torch::randn({4, 8}), b = torch::randn({4});
  FastLinear fl;
  torch::Tensor wrong_shape = torch::zeros({3, 5}), wrong_type = torch::zeros({3, 4}, torch::kFloat64),
                strided = torch::zeros({4, 3}).t();
  EXPECT_THROW(fl.accumulate(x, w, b, LinearCompute::kFP32, wrong_shape), clip::Error);
  EXPECT_THROW(fl.accumulate(x, w, b, LinearCompute::kFP32, wrong_type), clip::Error);
  EXPECT_THROW(fl.accumulate(x, w, b, LinearCompute::kFP32, strided), clip::Error);
}

TEST(FastLinear, EmptyBatch) {
  FastLinear fl;
  c10::InferenceMode inference;
  const torch::Tensor y = fl.forward(torch::randn({0, 8}), torch::randn({4, 8}), torch::randn({4}), Activation::kNone,
                                     LinearCompute::kFP32, torch::kFloat32);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{0, 4}));
}

TEST(FastLinear, KeepsOnePrecisionsPacksAtATime) {
  CLIP_SKIP_WITHOUT_ONEDNN_BF16();
  CLIP_SKIP_WITHOUT_INT8();
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({3, 32}), w = torch::randn({24, 32}), b = torch::randn({24});
  const torch::Tensor want = torch::linear(x, w, b);
  FastLinear fl;
  c10::InferenceMode inference;
  for (int round = 0; round < 2; ++round) {
    EXPECT_LE(relative_error(fl.forward(x, w, b, Activation::kNone, LinearCompute::kFP32, torch::kFloat32), want), 1e-5);
    EXPECT_LE(relative_error(fl.forward(x, w, b, Activation::kNone, LinearCompute::kFP32, torch::kFloat32), want), 1e-5);
    EXPECT_LE(relative_error(fl.forward(x, w, b, Activation::kNone, LinearCompute::kBF16, torch::kFloat32), want), 2e-2);
  }
  // fp32, bf16 (frees fp32's), fp32 again (re-packed, frees bf16's), bf16 again.
  EXPECT_EQ(fl.pack_count(), 4);
}

TEST(FastLinear, RepacksWhenWeightsChange) {
  torch::manual_seed(3);
  torch::nn::Linear lin(16, 8);
  FastLinear fl;
  const torch::Tensor x = torch::randn({4, 16});
  {
    torch::NoGradGuard no_grad;
    fl(x, lin->weight, lin->bias);
    fl(torch::randn({9, 16}), lin->weight, lin->bias);
    EXPECT_EQ(fl.pack_count(), 1);  // one packing serves every row count
    lin->weight.mul_(2.0);          // in place: the version counter moves
    EXPECT_LE(relative_error(fl(x, lin->weight, lin->bias), torch::linear(x, lin->weight, lin->bias)), 1e-5);
    EXPECT_EQ(fl.pack_count(), 2);
    lin->bias.add_(1.0);
    EXPECT_LE(relative_error(fl(x, lin->weight, lin->bias), torch::linear(x, lin->weight, lin->bias)), 1e-5);
  }
  {
    torch::NoGradGuard no_grad;
    lin->weight.set_data(torch::randn({8, 16}));  // a new tensor
  }
  c10::InferenceMode inference;
  EXPECT_LE(relative_error(fl(x, lin->weight, lin->bias), torch::linear(x, lin->weight, lin->bias)), 1e-5);
}

TEST(FastLinear, TrainingKeepsAutograd) {
  torch::manual_seed(4);
  torch::nn::Linear lin(12, 6);
  FastLinear fl;
  const torch::Tensor x = torch::randn({5, 12}, torch::requires_grad());
  ASSERT_TRUE(torch::GradMode::is_enabled());
  EXPECT_FALSE(clip::model::fast_linear_applies(x, lin->weight));
  const torch::Tensor y = fl(x, lin->weight, lin->bias, Activation::kQuickGelu);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  ASSERT_TRUE(lin->weight.grad().defined());
  ASSERT_TRUE(x.grad().defined());
  // The same gradients as the plain computation.
  const torch::Tensor x2 = x.detach().clone().requires_grad_(true);
  torch::nn::Linear lin2(12, 6);
  {
    torch::NoGradGuard no_grad;
    lin2->weight.copy_(lin->weight);
    lin2->bias.copy_(lin->bias);
  }
  reference_linear(x2, lin2->weight, lin2->bias, Activation::kQuickGelu).sum().backward();
  EXPECT_TRUE(torch::allclose(lin->weight.grad(), lin2->weight.grad()));
  EXPECT_TRUE(torch::allclose(x.grad(), x2.grad()));
  EXPECT_EQ(fl.pack_count(), 0);
}

TEST(FastLinear, ConcurrentCalls) {
  torch::manual_seed(5);
  const torch::Tensor w = torch::randn({64, 48}), b = torch::randn({64});
  FastLinear fl;
  std::vector<std::thread> threads;
  std::vector<double> errors(4, 1.0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      c10::InferenceMode inference;
      double worst = 0;
      for (int i = 0; i < 20; ++i) {
        const torch::Tensor x = torch::randn({1 + (i + t) % 7, 48});
        worst = std::max(worst,
                         relative_error(fl(x, w, b, Activation::kGelu), reference_linear(x, w, b, Activation::kGelu)));
      }
      errors[t] = worst;
    });
  for (auto& th : threads) th.join();
  for (double e : errors) EXPECT_LE(e, 1e-5);
}

}  // namespace
