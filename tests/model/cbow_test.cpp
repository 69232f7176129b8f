// The CBOW text encoder (config text_encoder "cbow"): its forward pass against the mean of the
// embedding rows written out by hand in double, its gradients against finite differences, the
// config field's checks, and a safetensors round trip.
#include <gtest/gtest.h>

#include <algorithm>

#include "clip/error.h"
#include "clip/model.h"
#include "model/model_access.h"
#include "model/modules.h"
#include "temp_dir.h"

namespace {

using clip::ModelConfig;

// A small ViT with a CBOW text tower: vocabulary 12, width 6, embedding 4.
ModelConfig tiny_cbow() {
  return clip::config_from_json_text(R"({"embed_dim": 4, "image_resolution": 8, "vision_layers": 1,
      "vision_width": 8, "vision_patch_size": 4, "vision_heads": 2, "context_length": 6, "vocab_size": 12,
      "text_encoder": "cbow", "transformer_width": 6, "transformer_layers": 0})",
                                     "tiny cbow");
}

// Rows as the tokenizer makes them: the end token is each row's largest id, then zero padding.
// Row 1 holds a 0 inside the caption (a real token) and row 2 fills the context.
torch::Tensor tokens() {
  return torch::tensor({{1, 5, 3, 11, 0, 0}, {2, 0, 4, 11, 0, 0}, {1, 3, 3, 7, 8, 11}}, torch::kInt64);
}

// The CBOW features written out: for each row, the mean of the embedding rows of its tokens up to
// and including the end token (the first largest id), then times the projection; in double.
torch::Tensor direct_cbow(const torch::Tensor& ids, const torch::Tensor& embedding, const torch::Tensor& projection) {
  const auto e = embedding.accessor<double, 2>();
  const auto p = projection.accessor<double, 2>();
  const auto t = ids.accessor<int64_t, 2>();
  const int64_t n = ids.size(0), len = ids.size(1), width = embedding.size(1), out = projection.size(1);
  torch::Tensor result = torch::zeros({n, out}, torch::kFloat64);
  auto r = result.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t end = 0;
    for (int64_t j = 0; j < len; ++j)
      if (t[i][j] > t[i][end]) end = j;
    std::vector<double> mean(width, 0.0);
    for (int64_t j = 0; j <= end; ++j)
      for (int64_t d = 0; d < width; ++d) mean[d] += e[t[i][j]][d] / static_cast<double>(end + 1);
    for (int64_t k = 0; k < out; ++k)
      for (int64_t d = 0; d < width; ++d) r[i][k] += mean[d] * p[d][k];
  }
  return result;
}

TEST(Cbow, ConfigHasNoTransformerParameters) {
  const clip::Model model = clip::Model::random(tiny_cbow(), 1);
  std::vector<std::string> text;
  for (const auto& [name, t] : model.state_dict())
    if (name.rfind("visual.", 0) != 0) text.push_back(name);
  std::sort(text.begin(), text.end());
  EXPECT_EQ(text, (std::vector<std::string>{"logit_scale", "text_projection", "token_embedding.weight"}));
  const ModelConfig named = clip::named_config("FMNIST-CBOW");
  EXPECT_TRUE(named.is_cbow());
  EXPECT_EQ(named.transformer_layers, 0);
}

TEST(Cbow, ForwardEqualsDirectMeanThenProjectionInDouble) {
  const clip::Model model = clip::Model::random(tiny_cbow(), 2);
  auto m = clip::model::module_of(model);
  m->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  const torch::Tensor got = m->encode_text(tokens(), nullptr);
  const torch::Tensor want = direct_cbow(tokens(), m->token_embedding->weight, m->text_projection);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-12);
  // A row cut after its end token gives the same features (padding never counts).
  const torch::Tensor short_rows = tokens().narrow(0, 0, 2).narrow(1, 0, 4);
  EXPECT_LT((m->encode_text(short_rows, nullptr) - want.narrow(0, 0, 2)).abs().max().item<double>(), 1e-12);
}

TEST(Cbow, ModelEncodeTextInFp32MatchesDirect) {
  const clip::Model model = clip::Model::random(tiny_cbow(), 3);
  auto m = clip::model::module_of(model);
  const torch::Tensor want = direct_cbow(tokens(), m->token_embedding->weight.detach().to(torch::kFloat64),
                                         m->text_projection.detach().to(torch::kFloat64));
  const torch::Tensor got = model.encode_text(tokens()).to(torch::kFloat64);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>());
}

TEST(Cbow, GradientsMatchFiniteDifferences) {
  const clip::Model model = clip::Model::random(tiny_cbow(), 4);
  auto m = clip::model::module_of(model);
  m->to(torch::kFloat64);
  m->train();
  torch::manual_seed(5);
  const torch::Tensor weights = torch::randn({3, 4}, torch::kFloat64);
  auto loss = [&] { return (m->encode_text(tokens(), nullptr) * weights).sum(); };
  m->zero_grad();
  loss().backward();
  const double h = 1e-6;
  for (torch::Tensor* param : {&m->token_embedding->weight, &m->text_projection}) {
    const torch::Tensor grad = param->grad().clone();
    const torch::Tensor flat = param->detach().view({-1});
    for (int64_t i = 0; i < flat.size(0); ++i) {
      const double saved = flat[i].item<double>();
      torch::NoGradGuard no_grad;
      flat[i] = saved + h;
      const double up = loss().item<double>();
      flat[i] = saved - h;
      const double down = loss().item<double>();
      flat[i] = saved;
      EXPECT_NEAR(grad.view({-1})[i].item<double>(), (up - down) / (2 * h), 1e-7) << "entry " << i;
    }
  }
  // Ids that occur only as padding or not at all get no gradient: rows 6, 9 and 10 are unused.
  for (int64_t row : {6, 9, 10}) EXPECT_EQ(m->token_embedding->weight.grad()[row].abs().sum().item<double>(), 0.0);
  // Id 0 is inside row 1's caption: its embedding row does get a gradient.
  EXPECT_GT(m->token_embedding->weight.grad()[0].abs().sum().item<double>(), 0.0);
}

TEST(Cbow, SavesAndLoadsAsSafetensors) {
  clip::test::TempDir dir;
  const clip::Model model = clip::Model::random(tiny_cbow(), 6);
  model.save_safetensors(dir.file("cbow.safetensors"));
  const clip::Model loaded = clip::Model::load(dir.file("cbow.safetensors"));
  EXPECT_TRUE(loaded.config().is_cbow());
  EXPECT_TRUE(torch::equal(loaded.encode_text(tokens()), model.encode_text(tokens())));
  const torch::Tensor images = torch::randn({2, 3, 8, 8});
  EXPECT_TRUE(torch::equal(loaded.encode_image(images), model.encode_image(images)));
}

TEST(Cbow, ConfigValuesAreChecked) {
  const std::string base = R"({"embed_dim": 4, "image_resolution": 8, "vision_layers": 1, "vision_width": 8,
      "vision_patch_size": 4, "vision_heads": 2, "context_length": 6, "vocab_size": 12, "transformer_width": 6, )";
  try {
    clip::config_from_json_text(base + R"("text_encoder": "lstm", "transformer_layers": 0})", "cfg");
    FAIL() << "an unknown text encoder was accepted";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("text_encoder"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"cbow\""), std::string::npos) << e.what();
  }
  try {
    clip::config_from_json_text(base + R"("text_encoder": "cbow", "transformer_layers": 2})", "cfg");
    FAIL() << "a CBOW config with transformer layers was accepted";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("transformer_layers"), std::string::npos) << e.what();
  }
  // The Transformer still needs its layers.
  EXPECT_THROW(clip::config_from_json_text(base + R"("transformer_layers": 0})", "cfg"), clip::Error);
  // The field survives the JSON round trip, and is absent for the Transformer.
  const std::string json = clip::config_to_json(tiny_cbow());
  EXPECT_NE(json.find("\"text_encoder\": \"cbow\""), std::string::npos) << json;
  EXPECT_TRUE(clip::config_from_json_text(json, "round trip").is_cbow());
  EXPECT_EQ(clip::config_to_json(clip::named_config("FMNIST-ViT")).find("text_encoder"), std::string::npos);
}

}  // namespace
