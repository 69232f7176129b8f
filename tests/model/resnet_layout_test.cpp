// The ResNet tower's channels-last path (InferencePlan::channels_last_applies) against the
// NCHW path it replaces: the same images encoded in a batch of 4 (channels-last) and one at a time
// (NCHW) give the same features, in fp32 and in bf16.
#include <gtest/gtest.h>

#include "clip/config.h"
#include "clip/model.h"
#include "model/inference_plan.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "tensor_compare.h"

namespace {

clip::ModelConfig tiny_resnet() {
  clip::ModelConfig c = clip::named_config("RN50");
  c.embed_dim = 64;
  c.image_resolution = 64;
  c.vision_resnet_layers = {1, 1, 1, 1};
  c.vision_width = 16;
  c.vision_heads = 8;
  c.transformer_width = 64;
  c.transformer_heads = 2;
  c.transformer_layers = 1;
  return c;
}

TEST(ResNetLayout, ChannelsLastBatchMatchesImagesOneByOne) {
  torch::manual_seed(21);
  clip::Model model = clip::Model::random(tiny_resnet(), 5);
  auto* resnet = clip::model::module_of(model)->visual->as<clip::model::ModifiedResNetImpl>();
  ASSERT_NE(resnet, nullptr);
  {
    // Random BatchNorm statistics, so the layers are not identities.
    torch::NoGradGuard no_grad;
    for (auto& b : resnet->named_buffers())
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
      else if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
  }
  const torch::Tensor images = torch::randn({4, 3, 64, 64});
  for (const clip::Precision precision : {clip::Precision::kFP32, clip::Precision::kBF16}) {
    model.set_precision(precision);
    const bool bf16 = precision == clip::Precision::kBF16;
    ASSERT_TRUE(clip::model::InferencePlan::channels_last_applies(images.size(0), bf16));
    ASSERT_FALSE(clip::model::InferencePlan::channels_last_applies(1, bf16));
    const torch::Tensor batch = model.encode_image(images);
    for (int64_t i = 0; i < 4; ++i) {
      const torch::Tensor one = model.encode_image(images.narrow(0, i, 1));
      // fp32: only the summation order of the convolutions differs. bf16: both round the same
      // operands to bf16, with f32 accumulation.
      EXPECT_LT(clip::test::relative_error(batch.narrow(0, i, 1), one),
                precision == clip::Precision::kFP32 ? 1e-5 : 2e-2)
          << "image " << i << (precision == clip::Precision::kFP32 ? " fp32" : " bf16");
    }
  }
}

}  // namespace
