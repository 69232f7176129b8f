// The training building blocks against direct computations: the losses (and the temperature's
// gradient), AdamW's first step with the decay exclusions, the schedule, gradient accumulation
// and gradient checkpointing against plain full-batch gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "clip/error.h"
#include "clip/train.h"
#include "model/model_access.h"
#include "train/fused_adamw.h"
#include "train/step.h"

namespace {

using clip::train::contrastive_loss;

torch::Tensor unit_rows(int64_t n, int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor x = torch::randn({n, d}, torch::kFloat64);
  return x / x.norm(2, -1, true);
}

// The loss and d(loss)/d(t) by explicit sums in double precision.
std::pair<double, double> direct_contrastive(const torch::Tensor& img, const torch::Tensor& txt, double t) {
  const int64_t n = img.size(0);
  const double scale = std::exp(t);
  std::vector<std::vector<double>> s(n, std::vector<double>(n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) s[i][j] = (img[i] * txt[j]).sum().item<double>();
  double loss = 0, grad = 0;
  for (int pass = 0; pass < 2; ++pass) {  // rows (image → text), then columns (text → image)
    for (int64_t i = 0; i < n; ++i) {
      double z = 0, expected = 0;
      for (int64_t j = 0; j < n; ++j) z += std::exp(scale * (pass ? s[j][i] : s[i][j]));
      for (int64_t j = 0; j < n; ++j)
        expected += std::exp(scale * (pass ? s[j][i] : s[i][j])) / z * (pass ? s[j][i] : s[i][j]);
      loss += (-scale * s[i][i] + std::log(z)) / n / 2;
      grad += scale * (expected - s[i][i]) / n / 2;  // d/dt with d(scale)/dt = scale
    }
  }
  return {loss, grad};
}

TEST(Loss, ContrastiveEqualsDirectComputationWithTemperatureGradient) {
  const torch::Tensor img = unit_rows(6, 5, 1), txt = unit_rows(6, 5, 2);
  const double t = std::log(1 / 0.07);
  torch::Tensor logit_scale = torch::full({}, t, torch::kFloat64).requires_grad_(true);
  const torch::Tensor loss = contrastive_loss(img.to(torch::kFloat32), txt.to(torch::kFloat32), logit_scale);
  loss.backward();
  const auto [expected_loss, expected_grad] = direct_contrastive(img, txt, t);
  EXPECT_NEAR(loss.item<double>(), expected_loss, 1e-5);
  EXPECT_NEAR(logit_scale.grad().item<double>(), expected_grad, 1e-5);
  // Matching pairs make the loss small; a shuffle makes it large.
  EXPECT_LT(contrastive_loss(img.to(torch::kFloat32), img.to(torch::kFloat32), logit_scale).item<double>(),
            contrastive_loss(img.to(torch::kFloat32), txt.to(torch::kFloat32), logit_scale).item<double>());
}

TEST(Loss, LocalLossesAverageToTheGlobalLossAndGradients) {
  const torch::Tensor img = unit_rows(8, 4, 3).to(torch::kFloat32), txt = unit_rows(8, 4, 4).to(torch::kFloat32);
  torch::Tensor a = img.clone().requires_grad_(true), b = txt.clone().requires_grad_(true);
  torch::Tensor scale = torch::full({}, 2.0).requires_grad_(true);
  contrastive_loss(a, b, scale).backward();
  torch::Tensor a2 = img.clone().requires_grad_(true), b2 = txt.clone().requires_grad_(true);
  torch::Tensor scale2 = torch::full({}, 2.0).requires_grad_(true);
  torch::Tensor total = torch::zeros({});
  for (int64_t r = 0; r < 2; ++r)  // two "ranks" of 4 rows each
    total =
        total +
        clip::train::contrastive_loss_local(a2.narrow(0, 4 * r, 4), b2.narrow(0, 4 * r, 4), a2, b2, 4 * r, scale2) / 2;
  EXPECT_NEAR(total.item<double>(), contrastive_loss(img, txt, scale.detach()).item<double>(), 1e-6);
  // Each rank's loss counts its own rows and columns; every pair appears in exactly one row term
  // and one column term across the ranks, so the gradients are the global ones.
  total.backward();
  EXPECT_LT((a.grad() - a2.grad()).abs().max().item<double>(), 1e-6);
  EXPECT_LT((b.grad() - b2.grad()).abs().max().item<double>(), 1e-6);
  EXPECT_NEAR(scale.grad().item<double>(), scale2.grad().item<double>(), 1e-6);
}

TEST(Loss, SigLipEqualsDirectComputation) {
  const torch::Tensor img = unit_rows(5, 3, 5), txt = unit_rows(5, 3, 6);
  const double t = std::log(10.0), bias = -10.0;
  const torch::Tensor loss = clip::train::siglip_loss(img.to(torch::kFloat32), txt.to(torch::kFloat32),
                                                      torch::full({}, t), torch::full({1}, bias));
  double expected = 0;
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const double z = std::exp(t) * (img[i] * txt[j]).sum().item<double>() + bias;
      const double sign = i == j ? 1.0 : -1.0;
      expected -= std::log(1.0 / (1.0 + std::exp(-sign * z))) / 5;
    }
  EXPECT_NEAR(loss.item<double>(), expected, 1e-4);
}

TEST(Loss, MismatchedShapesAreAnError) {
  EXPECT_THROW(contrastive_loss(torch::zeros({3, 4}), torch::zeros({2, 4}), torch::zeros({})), clip::Error);
  EXPECT_THROW(contrastive_loss(torch::zeros({0, 4}), torch::zeros({0, 4}), torch::zeros({})), clip::Error);
}

clip::ModelConfig tiny_vit() {
  clip::ModelConfig c;
  c.embed_dim = 16;
  c.image_resolution = 16;
  c.vision_layers = 2;
  c.vision_width = 32;
  c.vision_patch_size = 8;
  c.vision_head_width = 16;
  c.context_length = 8;
  c.vocab_size = 600;
  c.transformer_width = 32;
  c.transformer_heads = 2;
  c.transformer_layers = 2;
  return c;
}

TEST(Optimizer, DecayExclusionsOnARealModel) {
  const clip::Model model = clip::Model::random(tiny_vit(), 0);
  std::set<std::string> no_decay;
  for (const auto& p : clip::model::module_of(model)->named_parameters(true))
    if (!clip::train::gets_weight_decay(p.key(), p.value())) no_decay.insert(p.key());
  for (const char* name : {"token_embedding.weight", "positional_embedding", "logit_scale", "visual.class_embedding",
                           "visual.positional_embedding", "visual.ln_pre.weight", "visual.ln_post.bias",
                           "ln_final.weight", "transformer.resblocks.0.ln_1.weight",
                           "transformer.resblocks.0.attn.in_proj_bias", "visual.transformer.resblocks.1.mlp.c_fc.bias"})
    EXPECT_TRUE(no_decay.count(name)) << name << " should not decay";
  for (const char* name :
       {"visual.conv1.weight", "visual.proj", "text_projection", "transformer.resblocks.0.attn.in_proj_weight",
        "transformer.resblocks.1.attn.out_proj.weight", "visual.transformer.resblocks.0.mlp.c_fc.weight",
        "visual.transformer.resblocks.0.mlp.c_proj.weight"})
    EXPECT_FALSE(no_decay.count(name)) << name << " should decay";
}

TEST(Optimizer, FirstAdamWStepMatchesHandComputation) {
  torch::Tensor w = torch::tensor({{1.0f, -2.0f}, {0.5f, 3.0f}}).requires_grad_(true);
  torch::Tensor b = torch::tensor({0.25f, -1.0f}).requires_grad_(true);
  clip::train::OptimizerOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.2;
  auto opt = clip::train::make_optimizer(
      {{"visual.transformer.resblocks.0.mlp.c_fc.weight", w}, {"visual.transformer.resblocks.0.mlp.c_fc.bias", b}}, o);
  const torch::Tensor gw = torch::tensor({{0.1f, -0.2f}, {0.0f, 4.0f}}), gb = torch::tensor({-0.5f, 0.01f});
  w.mutable_grad() = gw.clone();
  b.mutable_grad() = gb.clone();
  const torch::Tensor w0 = w.detach().clone(), b0 = b.detach().clone();
  opt->step();
  // Step 1: m̂ = g, v̂ = g² (bias-corrected), so the update is lr·g/(|g| + eps); decay multiplies
  // the weight (only) by 1 − lr·wd first.
  auto adam = [&](const torch::Tensor& g) { return o.lr * g / (g.abs() + o.eps); };
  EXPECT_LT((w.detach() - (w0 * (1 - o.lr * o.weight_decay) - adam(gw))).abs().max().item<double>(), 1e-6);
  EXPECT_LT((b.detach() - (b0 - adam(gb))).abs().max().item<double>(), 1e-6);
}

// The fused step against libtorch's own AdamW: ten steps with random gradients, two groups (with
// and without decay), a parameter large enough to be split across threads, and a non-contiguous
// one (the tensor-operation path). Then the fused optimizer's state, saved, loads into
// libtorch's AdamW and both continue alike.
TEST(Optimizer, FusedAdamWMatchesLibtorchAdamW) {
  torch::manual_seed(3);
  auto make_params = [] {
    torch::manual_seed(4);
    return std::vector<torch::Tensor>{torch::randn({300, 257}).requires_grad_(true),
                                      torch::randn({7}).requires_grad_(true),
                                      torch::randn({6, 5}).t().requires_grad_(true)};
  };
  std::vector<torch::Tensor> a = make_params(), b = make_params();
  ASSERT_FALSE(a[2].is_contiguous());
  auto groups = [](const std::vector<torch::Tensor>& p) {
    std::vector<torch::optim::OptimizerParamGroup> g;
    auto opts = [](double wd) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(3e-3).betas({0.9, 0.98}).eps(1e-6).weight_decay(wd));
    };
    g.emplace_back(std::vector<torch::Tensor>{p[0], p[2]}, opts(0.2));
    g.emplace_back(std::vector<torch::Tensor>{p[1]}, opts(0.0));
    return g;
  };
  clip::train::FusedAdamW fused(groups(a));
  torch::optim::AdamW reference(groups(b));
  auto step_both = [&](torch::optim::Optimizer& x, std::vector<torch::Tensor>& px, torch::optim::Optimizer& y,
                       std::vector<torch::Tensor>& py) {
    for (size_t i = 0; i < px.size(); ++i) {
      const torch::Tensor g = torch::randn(px[i].sizes());
      px[i].mutable_grad() = g.clone();
      py[i].mutable_grad() = g.clone();
    }
    x.step();
    y.step();
  };
  auto max_diff = [](const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y) {
    double d = 0;
    for (size_t i = 0; i < x.size(); ++i) d = std::max(d, (x[i] - y[i]).abs().max().item<double>());
    return d;
  };
  const auto version_before = a[0]._version();
  for (int s = 0; s < 10; ++s) step_both(fused, a, reference, b);
  EXPECT_LT(max_diff(a, b), 1e-6);  // float rounding: a few ulp
  // Caches keyed by version (FastLinear's packed weights) must see each step as a change.
  EXPECT_GE(a[0]._version(), version_before + 10);
  EXPECT_GT((a[0] - make_params()[0]).abs().max().item<double>(), 1e-3);  // it did move

  torch::serialize::OutputArchive out;
  fused.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream read_back(bytes.str());
  in.load_from(read_back);
  std::vector<torch::Tensor> c;
  for (const auto& p : a) c.push_back(p.detach().clone().requires_grad_(true));
  torch::optim::AdamW continued(groups(c));
  continued.load(in);
  for (int s = 0; s < 3; ++s) step_both(fused, a, continued, c);
  EXPECT_LT(max_diff(a, c), 1e-6);
}

TEST(Schedule, WarmupThenCosine) {
  using clip::train::cosine_lr;
  EXPECT_DOUBLE_EQ(cosine_lr(0, 1.0, 10, 110), 0.1);
  EXPECT_DOUBLE_EQ(cosine_lr(9, 1.0, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(cosine_lr(10, 1.0, 10, 110), 1.0);
  EXPECT_NEAR(cosine_lr(60, 1.0, 10, 110), 0.5, 1e-12);
  EXPECT_NEAR(cosine_lr(110, 1.0, 10, 110), 0.0, 1e-12);
}

// Gradients of every parameter after one accumulate_gradients call.
std::map<std::string, torch::Tensor> gradients(clip::Model& model, const torch::Tensor& images,
                                               const torch::Tensor& tokens, int64_t chunks) {
  auto& m = *clip::model::module_of(model);
  m.train();
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
  clip::train::accumulate_gradients(
      m, clip::Precision::kFP32, torch::kCPU, images, tokens, chunks,
      [](const torch::Tensor& i, const torch::Tensor& t, const torch::Tensor& s) { return contrastive_loss(i, t, s); });
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(true))
    out[p.key()] = p.value().grad().defined() ? p.value().grad().clone() : torch::zeros_like(p.value());
  return out;
}

torch::Tensor random_tokens(int64_t n, int64_t length, int64_t vocab) {
  torch::Tensor t = torch::zeros({n, length}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = 2 + i % (length - 2);
    t[i][0] = vocab - 2;
    for (int64_t j = 1; j < len; ++j) t[i][j] = (i * 7 + j * 13) % (vocab - 3) + 1;
    t[i][len] = vocab - 1;
  }
  return t;
}

double max_difference(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  double worst = 0;
  for (const auto& [name, g] : a) worst = std::max(worst, (g - b.at(name)).abs().max().item<double>());
  return worst;
}

// In double precision, so that the comparison sees the algorithm (the cached features of the
// other micro-batches, the temperature's gradient taken once) rather than float rounding: in fp32
// the kernels block micro-batches of other shapes differently (the text tower runs to each
// batch's longest text), which moves gradients of magnitude 10 by ~1e-5.
TEST(Accumulation, MicroBatchesGiveTheFullBatchGradients) {
  clip::Model model = clip::Model::random(tiny_vit(), 7);
  clip::model::module_of(model)->to(torch::kFloat64);
  torch::manual_seed(8);
  const torch::Tensor images = torch::randn({12, 3, 16, 16}, torch::kFloat64), tokens = random_tokens(12, 8, 600);
  const auto full = gradients(model, images, tokens, 1);
  double largest = 0;
  for (const auto& [name, g] : full) {
    ASSERT_EQ(g.scalar_type(), torch::kFloat64) << name;
    largest = std::max(largest, g.abs().max().item<double>());
  }
  ASSERT_GT(largest, 1e-3);  // the gradients are not trivially zero
  for (int64_t chunks : {2, 3, 4})
    EXPECT_LE(max_difference(full, gradients(model, images, tokens, chunks)), 1e-10) << chunks;
}

TEST(Accumulation, GradientCheckpointingGivesTheSameGradients) {
  clip::Model model = clip::Model::random(tiny_vit(), 9);
  torch::manual_seed(10);
  const torch::Tensor images = torch::randn({6, 3, 16, 16}), tokens = random_tokens(6, 8, 600);
  const auto plain = gradients(model, images, tokens, 1);
  model.set_gradient_checkpointing(true);
  EXPECT_LE(max_difference(plain, gradients(model, images, tokens, 1)), 1e-6);
  EXPECT_LE(max_difference(plain, gradients(model, images, tokens, 2)), 1e-5);
}

}  // namespace

namespace {

// bf16 autocast changes the arithmetic, not the direction of learning: every parameter's gradient
// of one bf16 step points where the fp32 one does.
TEST(Precision, Bf16GradientsAgreeWithFp32) {
  clip::Model model = clip::Model::random(tiny_vit(), 11);
  torch::manual_seed(12);
  const torch::Tensor images = torch::randn({16, 3, 16, 16}), tokens = random_tokens(16, 8, 600);
  auto grads = [&](clip::Precision precision) {
    auto& m = *clip::model::module_of(model);
    m.train();
    for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
    clip::train::accumulate_gradients(m, precision, torch::kCPU, images, tokens, 1,
                                      [](const torch::Tensor& i, const torch::Tensor& t, const torch::Tensor& s) {
                                        return contrastive_loss(i, t, s);
                                      });
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : m.named_parameters(true)) out[p.key()] = p.value().grad().clone();
    return out;
  };
  const auto fp32 = grads(clip::Precision::kFP32);
  const auto bf16 = grads(clip::Precision::kBF16);
  for (const auto& [name, g] : fp32) {
    const torch::Tensor h = bf16.at(name);
    ASSERT_EQ(h.scalar_type(), torch::kFloat32) << name;
    if (g.norm().item<double>() < 1e-6) continue;  // e.g. rows of tokens the batch does not use
    const double cosine = (g * h).sum().item<double>() / (g.norm() * h.norm()).item<double>();
    EXPECT_GT(cosine, 0.99) << name;
  }
}

}  // namespace
