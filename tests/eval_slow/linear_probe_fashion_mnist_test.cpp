// The linear probe reaches the known logistic-regression accuracy on Fashion-MNIST raw pixels
// (about 84%). Label `slow`: 1.5 to 3.5 minutes on 2 shared cores.
#include <gtest/gtest.h>

#include <chrono>

#include "clip/eval.h"
#include "util/file_io.h"

namespace clip::eval {
namespace {

// Pixels / 255 as [N, 784] features, labels [N].
std::pair<torch::Tensor, torch::Tensor> pixels(const data::Dataset& ds) {
  const int64_t n = static_cast<int64_t>(ds.size());
  torch::Tensor x = torch::empty({n, 784});
  torch::Tensor y = torch::empty({n}, torch::kInt64);
  float* px = x.data_ptr<float>();
  int64_t* py = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const data::Example e = ds.at(static_cast<size_t>(i));
    for (int j = 0; j < 784; ++j) px[i * 784 + j] = static_cast<float>(e.pixels.pixels[static_cast<size_t>(j)]) / 255.f;
    py[i] = e.label;
  }
  return {x, y};
}

TEST(LinearProbe, FashionMnistRawPixelsReachTheKnownLogisticRegressionAccuracy) {
  if (!util::file_exists(std::string(data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (" << data::kFashionMnistDir << ")";
  torch::set_num_threads(2);
  const auto [train_x, train_y] = pixels(*data::open_fashion_mnist("train"));
  const auto [test_x, test_y] = pixels(*data::open_fashion_mnist("test"));
  LinearProbeOptions o;
  // A short sweep around where the optimum lies for 784 pixel features, and capped L-BFGS
  // iterations (as scikit-learn's default 100), to fit CI time on 2 cores.
  o.lambdas = {1e-3, 1e-4};  // 1e-2 is clearly worse (validation 0.838 vs 0.860)
  o.refine = false;
  o.max_iterations = 100;
  o.on_lambda = [](double lambda, double acc) {
    std::printf("linear probe: lambda %.3g  validation accuracy %.4f\n", lambda, acc);
  };
  o.validation_fraction = 1.0 / 6;  // 10,000 of 60,000
  const auto t0 = std::chrono::steady_clock::now();
  const LinearProbeResult r = linear_probe(train_x, train_y, test_x, test_y, o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fashion-mnist pixels: test accuracy %.4f, lambda %g (validation %.4f), %.1f s\n", r.test_accuracy,
              r.lambda, r.validation_accuracy, s);
  EXPECT_EQ(r.train_count, 50000);
  EXPECT_EQ(r.validation_count, 10000);
  EXPECT_EQ(r.test_count, 10000);
  EXPECT_EQ(r.classes, 10);
  EXPECT_EQ(r.sweep.size(), 2u);
  EXPECT_GE(r.test_accuracy, 0.83);
  EXPECT_LE(r.test_accuracy, 0.87);
}

}  // namespace
}  // namespace clip::eval
