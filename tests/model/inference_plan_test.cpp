// The CPU inference plan (model/inference_plan.h) against the reference modules (model/modules.h)
// on the same weights and inputs: features and every recorded intermediate, ViT and ResNet
// towers, fp32 and bf16, batches on each side of the plan's choices (fused short attention,
// channels-last maps). Tolerances are those between the paths in residual_block_test and
// resnet_layout_test: fp32 1e-5; bf16 2e-2 (both round the same operands to bf16).
#include <gtest/gtest.h>

#include "cpu_features.h"
#include "clip/config.h"
#include "clip/model.h"
#include "model/inference_plan.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "tensor_compare.h"

namespace {

using clip::test::relative_error;

clip::ModelConfig tiny(bool vit) {
  clip::ModelConfig c = clip::named_config(vit ? "ViT-B/32" : "RN50");
  c.embed_dim = 32;
  c.image_resolution = vit ? 32 : 64;
  if (vit) {
    c.vision_patch_size = 8;
    c.vision_layers = 2;
    c.vision_width = 64;
    c.vision_heads = 4;
  } else {
    c.vision_resnet_layers = {1, 1, 1, 1};
    c.vision_width = 16;
    c.vision_heads = 8;
  }
  c.context_length = 77;
  c.transformer_width = 64;
  c.transformer_heads = 4;
  c.transformer_layers = 2;
  return c;
}

// Random LayerNorm, BatchNorm and bias parameters too, so no layer is an identity.
void randomize(clip::model::ClipModuleImpl& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters(true)) {
    if (p.key().find("bias") != std::string::npos) p.value().normal_(0, 0.1);
    else if (p.key().find("ln_") != std::string::npos || p.key().find(".bn") != std::string::npos)
      p.value().normal_(1, 0.2);
  }
  for (auto& b : m.named_buffers(true))
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    else if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
}

torch::Tensor prompts(int64_t batch, int64_t length) {
  torch::Tensor ids = torch::zeros({batch, 77}, torch::kInt64);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = length - i % 3;
    ids[i][0] = 49406;
    ids[i].narrow(0, 1, n - 2).copy_(torch::randint(1, 49000, {n - 2}, torch::kInt64));
    ids[i][n - 1] = 49407;
  }
  return ids;
}

// The reference: the modules' own forward, in eval mode without autograd.
struct Reference {
  clip::model::ClipModuleImpl& m;
  clip::Precision precision;
  torch::Tensor image(const torch::Tensor& x, clip::Intermediates* r) {
    torch::NoGradGuard no_grad;
    clip::AutocastScope autocast(precision, torch::kCPU);
    return m.encode_image(x, r).to(torch::kFloat32);
  }
  torch::Tensor text(const torch::Tensor& t, clip::Intermediates* r) {
    torch::NoGradGuard no_grad;
    clip::AutocastScope autocast(precision, torch::kCPU);
    return m.encode_text(t, r).to(torch::kFloat32);
  }
};

void expect_records_match(const clip::Intermediates& got, const clip::Intermediates& want, double tol,
                          const std::string& label) {
  ASSERT_EQ(got.size(), want.size()) << label;
  for (const auto& [tag, t] : want) {
    ASSERT_TRUE(got.count(tag)) << label << " " << tag;
    EXPECT_LT(relative_error(got.at(tag).to(torch::kFloat32), t.to(torch::kFloat32)), tol) << label << " " << tag;
  }
}

TEST(InferencePlan, MatchesTheReferenceModules) {
  CLIP_SKIP_WITHOUT_ONEDNN_BF16();
  for (const bool vit : {true, false}) {
    torch::manual_seed(31);
    clip::Model model = clip::Model::random(tiny(vit), 7);
    randomize(*clip::model::module_of(model));
    const int64_t r = model.config().image_resolution;
    for (const clip::Precision precision : {clip::Precision::kFP32, clip::Precision::kBF16}) {
      model.set_precision(precision);
      Reference ref{*clip::model::module_of(model), precision};
      const double tol = precision == clip::Precision::kFP32 ? 1e-5 : 2e-2;
      const std::string label =
          std::string(vit ? "ViT" : "ResNet") + (precision == clip::Precision::kFP32 ? " fp32" : " bf16");
      // 1 image (NCHW maps) and 4 (channels-last maps).
      for (const int64_t n : {1, 4}) {
        const torch::Tensor images = torch::randn({n, 3, r, r});
        EXPECT_LT(relative_error(model.encode_image(images), ref.image(images, nullptr)), tol)
            << label << " images " << n;
      }
      // 1 prompt (fused short attention), 12 prompts of up to 40 tokens (batched attention).
      for (const auto& [n, length] : std::vector<std::pair<int64_t, int64_t>>{{1, 9}, {12, 40}}) {
        const torch::Tensor tokens = prompts(n, length);
        EXPECT_LT(relative_error(model.encode_text(tokens), ref.text(tokens, nullptr)), tol)
            << label << " prompts " << n;
      }
      clip::Intermediates got, want;
      const torch::Tensor images = torch::randn({2, 3, r, r}), tokens = prompts(2, 8);
      model.encode_image(images, &got);
      model.encode_text(tokens, &got);
      ref.image(images, &want);
      ref.text(tokens, &want);
      expect_records_match(got, want, tol, label);
    }
  }
}

TEST(InferencePlan, FastPathOnlyForEvalModeInferenceOnFp32CpuWeights) {
  clip::Model model = clip::Model::random(tiny(true), 3);
  clip::model::InferencePlan plan(clip::model::module_of(model));
  const torch::Tensor x = torch::randn({1, 3, 32, 32});
  EXPECT_FALSE(plan.fast_path_applies(x));  // autograd on
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(plan.fast_path_applies(x));
    clip::model::module_of(model)->train();
    EXPECT_FALSE(plan.fast_path_applies(x));  // training
    clip::model::module_of(model)->eval();
    clip::model::module_of(model)->to(torch::kFloat64);
    EXPECT_FALSE(plan.fast_path_applies(x));  // fp64 weights
  }
  // Still right on the reference path: fp64 weights give the fp32 features to within fp32 rounding.
  c10::InferenceMode inference;
  EXPECT_EQ(model.encode_image(x).sizes(), (std::vector<int64_t>{1, 32}));
}

}  // namespace
