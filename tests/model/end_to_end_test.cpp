// End to end against the reference: image files through our decoder and Pillow-exact
// preprocessing, caption strings through our tokenizer, then the model; compared with the
// features the original OpenAI code computed from the same files and strings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "clip/embedder.h"
#include "clip/error.h"
#include "test_paths.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace {

torch::Tensor load_f32(const std::string& path) {
  clip::util::NpyArray a = clip::util::read_npy(path);
  if (a.dtype != "<f4") throw clip::Error(path + ": expected float32");
  return torch::from_blob(a.data.data(), a.shape, torch::kFloat32).clone();
}

class EndToEnd : public ::testing::TestWithParam<const char*> {};

TEST_P(EndToEnd, FilesAndStringsMatchReferenceFeatures) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const std::string fx = clip::test::shared_fixtures(), name = GetParam();
  const auto index = nlohmann::json::parse(clip::util::read_file(fx + "/ref/" + name + "/index.json"));
  const clip::Model model =
      clip::Model::load(fx + "/models/" + name + ".safetensors", {fx + "/models/" + name + ".config.json", {}});
  const clip::Embedder embedder(model);
  std::vector<std::string> images;
  for (const auto& f : index["images"]) images.push_back(fx + "/images/" + f.get<std::string>());
  const std::vector<std::string> captions = index["captions"].get<std::vector<std::string>>();
  const torch::Tensor img = embedder.embed_image_files(images, 8), txt = embedder.embed_texts(captions);
  const torch::Tensor ref_img = load_f32(fx + "/ref/" + name + "/image_features.npy");
  const torch::Tensor ref_txt = load_f32(fx + "/ref/" + name + "/text_features.npy");
  const torch::Tensor ref_logits = load_f32(fx + "/ref/" + name + "/logits_per_image.npy");
  const double di = (img - ref_img).abs().max().item<double>(), dt = (txt - ref_txt).abs().max().item<double>();
  const double dl = (model.logits(img, txt) - ref_logits).abs().max().item<double>();
  EXPECT_LE(di, 1e-4 * std::max(1.0, ref_img.abs().max().item<double>())) << name;
  EXPECT_LE(dt, 1e-4 * std::max(1.0, ref_txt.abs().max().item<double>())) << name;
  EXPECT_GE(torch::cosine_similarity(img, ref_img, 1).min().item<double>(), 0.99999) << name;
  EXPECT_GE(torch::cosine_similarity(txt, ref_txt, 1).min().item<double>(), 0.99999) << name;
  EXPECT_LE(dl, 1e-3) << name;
  std::printf("[ end-to-end ] %-12s %zu images: max|diff| %.2e; %zu captions: %.2e; logits %.2e\n", name.c_str(),
              images.size(), di, captions.size(), dt, dl);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EndToEnd, ::testing::Values("tiny-vit", "tiny-vit-f16", "tiny-rn-f16"));

TEST(Embedder, ZeroShotWeightsAreNormalizedTemplateMeans) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const std::string fx = clip::test::shared_fixtures();
  const clip::Model model =
      clip::Model::load(fx + "/models/tiny-vit.safetensors", {fx + "/models/tiny-vit.config.json", {}});
  const clip::Embedder embedder(model);
  const torch::Tensor w = embedder.zero_shot_weights({"cat", "dog"}, {"a photo of a {}.", "a drawing of a {}."});
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{64, 2}));
  const torch::Tensor e = clip::normalize_rows(
      embedder.embed_texts({"a photo of a cat.", "a drawing of a cat.", "a photo of a dog.", "a drawing of a dog."}));
  const torch::Tensor cat = clip::normalize_rows((e[0] + e[1]).unsqueeze(0) / 2).squeeze(0);
  EXPECT_LE((w.select(1, 0) - cat).abs().max().item<double>(), 1e-6);
  EXPECT_NEAR(w.select(1, 1).norm().item<double>(), 1.0, 1e-6);
  EXPECT_THROW(embedder.zero_shot_weights({"cat"}, {"no placeholder"}), clip::Error);
  EXPECT_THROW(embedder.embed_image_files({fx + "/images/empty.png"}), clip::Error);
}

}  // namespace
