// Linear probes: a separable toy problem and input checks (the Fashion-MNIST figure is in
// tests/eval_slow).
#include <gtest/gtest.h>

#include "clip/error.h"
#include "clip/eval.h"

namespace clip::eval {
namespace {

TEST(LinearProbe, SeparableBlobsAreLearnedAndTheSweepIsDeterministic) {
  // Three well separated clusters in 5 dimensions.
  torch::manual_seed(3);
  auto make = [](int64_t per_class) {
    std::vector<torch::Tensor> xs, ys;
    for (int64_t c = 0; c < 3; ++c) {
      torch::Tensor center = torch::zeros({5});
      center[c] = 6;
      xs.push_back(torch::randn({per_class, 5}) + center);
      ys.push_back(torch::full({per_class}, c, torch::kInt64));
    }
    return std::make_pair(torch::cat(xs), torch::cat(ys));
  };
  const auto [tx, ty] = make(100);
  const auto [vx, vy] = make(50);
  LinearProbeOptions o;
  o.seed = 7;
  const LinearProbeResult a = linear_probe(tx, ty, vx, vy, o);
  EXPECT_GE(a.test_accuracy, 0.99);
  EXPECT_EQ(a.validation_count, 60);
  EXPECT_EQ(a.weight.sizes(), (std::vector<int64_t>{5, 3}));
  // Coarse sweep 1e2 .. 1e-6 (5 values), then at most 4 refinements.
  EXPECT_GE(a.sweep.size(), 5u);
  EXPECT_LE(a.sweep.size(), 9u);
  const LinearProbeResult b = linear_probe(tx, ty, vx, vy, o);
  EXPECT_EQ(a.lambda, b.lambda);
  EXPECT_EQ(a.test_accuracy, b.test_accuracy);
}

TEST(LinearProbe, BadInputs) {
  const torch::Tensor x = torch::zeros({4, 2}), y = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  EXPECT_THROW(linear_probe(x, y, torch::zeros({2, 3}), torch::tensor({0, 1}, torch::kInt64)), Error);  // D differs
  EXPECT_THROW(linear_probe(x, torch::tensor({0, 1}, torch::kInt64), x, y), Error);                     // N differs
  EXPECT_THROW(linear_probe(x, torch::tensor({0, -1, 0, 1}, torch::kInt64), x, y), Error);              // unlabelled
  LinearProbeOptions o;
  o.validation_fraction = 1.5;
  EXPECT_THROW(linear_probe(x, y, x, y, o), Error);
  o.validation_fraction = 0.25;
  o.lambdas = {-1};
  EXPECT_THROW(linear_probe(x, y, x, y, o), Error);
}

}  // namespace
}  // namespace clip::eval
