// Model parity with the reference outputs of the original OpenAI code (../shared/fixtures/ref):
// features, logits and intermediates of every fixture model, in every checkpoint format.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cpu_features.h"
#include "clip/error.h"
#include "clip/model.h"
#include "reference_data.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

using clip::test::fixtures;
using clip::test::load_npy;

#define REQUIRE_FIXTURE_MODEL(name)                                                                  \
  do {                                                                                               \
    if (!clip::test::path_exists(fixtures() + "/models/" + std::string(name) + ".config.json"))      \
      GTEST_SKIP() << "fixture model " << (name) << " needs ../shared/fixtures (set CLIP_FIXTURES)"; \
  } while (0)

struct Diff {
  double max_abs, ref_max, cosine_min;
};

Diff compare(const torch::Tensor& got, const torch::Tensor& ref) {
  EXPECT_EQ(got.sizes(), ref.sizes());
  const torch::Tensor g = got.to(torch::kFloat64).reshape({got.size(0), -1});
  const torch::Tensor r = ref.to(torch::kFloat64).reshape({ref.size(0), -1});
  const double cos = torch::cosine_similarity(g, r, 1).min().item<double>();
  return {(g - r).abs().max().item<double>(), r.abs().max().item<double>(), cos};
}

// Features and logits to max|diff| <= 1e-4·max(1, max|ref|), cosine >= 0.99999; logits 1e-3.
void expect_model_matches(const clip::Model& m, const std::string& ref_dir, const std::string& label) {
  const auto index = nlohmann::json::parse(clip::util::read_file(ref_dir + "/index.json"));
  const torch::Tensor images = load_npy(fixtures() + "/" + index["image_input"].get<std::string>());
  const torch::Tensor tokens = load_npy(ref_dir + "/text_tokens.npy").to(torch::kInt64);
  const torch::Tensor img = m.encode_image(images), txt = m.encode_text(tokens);
  const Diff di = compare(img, load_npy(ref_dir + "/image_features.npy"));
  const Diff dt = compare(txt, load_npy(ref_dir + "/text_features.npy"));
  const Diff dl = compare(m.logits(img, txt), load_npy(ref_dir + "/logits_per_image.npy"));
  EXPECT_LE(di.max_abs, 1e-4 * std::max(1.0, di.ref_max)) << label << " image features";
  EXPECT_GE(di.cosine_min, 0.99999) << label << " image features";
  EXPECT_LE(dt.max_abs, 1e-4 * std::max(1.0, dt.ref_max)) << label << " text features";
  EXPECT_GE(dt.cosine_min, 0.99999) << label << " text features";
  EXPECT_LE(dl.max_abs, 1e-3) << label << " logits";
  // One caption at a time too: a batch that small takes the fused short attention.
  std::vector<torch::Tensor> singles;
  for (int64_t i = 0; i < tokens.size(0); ++i) singles.push_back(m.encode_text(tokens.narrow(0, i, 1)));
  const Diff ds = compare(torch::cat(singles), load_npy(ref_dir + "/text_features.npy"));
  EXPECT_LE(ds.max_abs, 1e-4 * std::max(1.0, ds.ref_max)) << label << " text features, one caption a call";
  EXPECT_GE(ds.cosine_min, 0.99999) << label << " text features, one caption a call";
  EXPECT_NEAR(m.logit_scale(), index["logit_scale"].get<double>(), 1e-6) << label;
  std::printf("[ parity ] %-32s image max|diff| %.2e cos %.7f | text %.2e cos %.7f (one a call %.2e) | logits %.2e\n",
              label.c_str(), di.max_abs, di.cosine_min, dt.max_abs, dt.cosine_min, ds.max_abs, dl.max_abs);
}

void expect_intermediates_match(const clip::Model& m, const std::string& ref_dir, const std::string& label) {
  const auto index = nlohmann::json::parse(clip::util::read_file(ref_dir + "/index.json"));
  const torch::Tensor images = load_npy(fixtures() + "/" + index["image_input"].get<std::string>()).narrow(0, 0, 2);
  const torch::Tensor tokens = load_npy(ref_dir + "/text_tokens.npy").to(torch::kInt64).narrow(0, 0, 3);
  clip::Intermediates rec;
  m.encode_image(images, &rec);
  m.encode_text(tokens, &rec);
  int checked = 0;
  for (const auto& t : index["intermediates"]["tensors"]) {
    const std::string tag = t["tag"];
    ASSERT_TRUE(rec.count(tag)) << label << ": no intermediate " << tag;
    const Diff d = compare(rec[tag], load_npy(ref_dir + "/intermediates/" + t["file"].get<std::string>()));
    EXPECT_LE(d.max_abs, 1e-4 * std::max(1.0, d.ref_max)) << label << " " << tag;
    ++checked;
  }
  EXPECT_GT(checked, 8) << label;
}

class ModelParity : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelParity, SafetensorsWithConfigMatchesReference) {
  const std::string name = GetParam();
  REQUIRE_FIXTURE_MODEL(name);
  const std::string base = fixtures() + "/models/" + name;
  const clip::Model m = clip::Model::load(base + ".safetensors", {base + ".config.json", {}});
  expect_model_matches(m, fixtures() + "/ref/" + name, name + ".safetensors");
  expect_intermediates_match(m, fixtures() + "/ref/" + name, name + ".safetensors");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelParity, ::testing::Values("tiny-vit", "tiny-vit-f16", "tiny-rn-f16"));

// Every other container of the same weights: torch.save (.pt) and TorchScript (.jit.pt).
class ModelFormatParity : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(ModelFormatParity, MatchesReference) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const auto [name, ext] = GetParam();
  const std::string base = fixtures() + "/models/" + name;
  const clip::Model m = clip::Model::load(base + ext, {base + ".config.json", {}});
  expect_model_matches(m, fixtures() + "/ref/" + name, std::string(name) + ext);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelFormatParity,
                         ::testing::Values(std::pair{"tiny-vit-f16", ".pt"}, std::pair{"tiny-vit-f16", ".jit.pt"},
                                           std::pair{"tiny-rn-f16", ".pt"}, std::pair{"tiny-rn-f16", ".jit.pt"}));

TEST(ModelLoading, ConfigBesideTheCheckpointIsFound) {
  const clip::Model m = clip::Model::load(fixtures() + "/models/tiny-vit-f16.safetensors");
  EXPECT_EQ(m.config().resolved_text_heads(), 2);
}

TEST(ModelLoading, HuggingFaceFolderMatchesReference) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  // The fixture ships the HF weights as a file next to a folder holding config.json.
  const std::string dir = fixtures() + "/models/tiny-vit-f16.hf";
  const clip::Model m =
      clip::Model::load(fixtures() + "/models/tiny-vit-f16.hf.safetensors", {dir + "/config.json", {}});
  expect_model_matches(m, fixtures() + "/ref/tiny-vit-f16", "tiny-vit-f16.hf.safetensors");
}

TEST(ModelLoading, InferredConfigAssumesHeadWidth64) {
  // Without a config, heads are guessed as width/64 = 1 for the text tower (the fixtures have 2):
  // the model loads (shapes agree) but its text features differ, as the fixtures README warns.
  const std::string tmp = std::string(::testing::TempDir()) + "/tiny-vit-noconfig.safetensors";
  clip::util::write_file_atomic(tmp, clip::util::read_file(fixtures() + "/models/tiny-vit-f16.safetensors"));
  const clip::Model m = clip::Model::load(tmp);
  EXPECT_EQ(m.config().resolved_text_heads(), 1);
  EXPECT_EQ(m.config().image_resolution, 32);
  EXPECT_EQ(m.config().vision_layers, 2);
}

// Loading the fixture with `config_json` fails with a message containing `expected`.
void expect_load_error(const std::string& config_json, const std::string& expected) {
  const std::string cfg = std::string(::testing::TempDir()) + "/wrong.config.json";
  clip::util::write_file_atomic(cfg, config_json);
  try {
    clip::Model::load(fixtures() + "/models/tiny-vit-f16.safetensors", {cfg, {}});
    ADD_FAILURE() << "expected an error containing " << expected;
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(ModelLoading, ConfigContradictingTheTensorsIsNamed) {
  expect_load_error(R"({"embed_dim": 64, "image_resolution": 32, "vision_layers": 2, "vision_width": 64,
    "vision_patch_size": 8, "transformer_width": 64, "transformer_heads": 2, "transformer_layers": 3})",
                    "missing: transformer.resblocks.2.");
  expect_load_error(R"({"embed_dim": 32, "image_resolution": 32, "vision_layers": 2, "vision_width": 64,
    "vision_patch_size": 8, "transformer_width": 64, "transformer_heads": 2, "transformer_layers": 2})",
                    "has shape [64, 64], expected [64, 32]");
  expect_load_error(R"({"embed_dim": 64, "image_resolution": 32, "vision_layers": 2, "vision_width": 64,
    "vision_patch_size": 8, "transformer_width": 64, "transformer_heads": 3, "transformer_layers": 2})",
                    "not a multiple of transformer_heads 3");
  expect_load_error(R"({"embed_dim": 64, "vision_layers": 2})", "missing field \"image_resolution\"");
}

TEST(ModelLoading, TextTruncationToTheLastEndTokenChangesNothing) {
  const std::string base = fixtures() + "/models/tiny-vit-f16";
  const clip::Model m = clip::Model::load(base + ".safetensors", {base + ".config.json", {}});
  const torch::Tensor tokens =
      load_npy(fixtures() + "/ref/tiny-vit-f16/text_tokens.npy").to(torch::kInt64).narrow(0, 0, 3);
  clip::Intermediates rec;  // recording computes all 77 positions
  const torch::Tensor full = m.encode_text(tokens, &rec);
  const torch::Tensor cut = m.encode_text(tokens);
  EXPECT_LE((full - cut).abs().max().item<double>(), 1e-5);
}

TEST(ModelPrecision, Bf16FeaturesAreCloseToFp32) {
  CLIP_SKIP_WITHOUT_ONEDNN_BF16();
  for (const char* name : {"tiny-vit-f16", "tiny-rn-f16"}) {
    const std::string base = fixtures() + "/models/" + name;
    if (!clip::test::path_exists(base + ".config.json")) continue;  // tiny-rn-f16 needs ../shared
    clip::Model m = clip::Model::load(base + ".safetensors", {base + ".config.json", {}});
    const auto index = nlohmann::json::parse(clip::util::read_file(fixtures() + "/ref/" + name + "/index.json"));
    const torch::Tensor images = load_npy(fixtures() + "/" + index["image_input"].get<std::string>());
    const torch::Tensor tokens = load_npy(fixtures() + "/ref/" + name + "/text_tokens.npy").to(torch::kInt64);
    const torch::Tensor img32 = m.encode_image(images), txt32 = m.encode_text(tokens);
    m.set_precision(clip::Precision::kBF16);
    const torch::Tensor img16 = m.encode_image(images), txt16 = m.encode_text(tokens);
    const double ci = torch::cosine_similarity(img16, img32, 1).min().item<double>();
    const double ct = torch::cosine_similarity(txt16, txt32, 1).min().item<double>();
    EXPECT_GE(ci, 0.999) << name;
    EXPECT_GE(ct, 0.999) << name;
    EXPECT_FALSE(torch::equal(img16, img32)) << name << ": bf16 did not take effect";
    std::printf("[ bf16 ] %-12s image cos min %.6f, text cos min %.6f\n", name, ci, ct);
  }
}

clip::ModelConfig tiny_config() {
  clip::ModelConfig c;
  c.embed_dim = 16;
  c.image_resolution = 32;
  c.vision_layers = 1;
  c.vision_width = 64;
  c.vision_patch_size = 16;
  c.transformer_width = 64;
  c.transformer_layers = 1;
  c.transformer_heads = 2;
  c.vocab_size = 100;
  c.context_length = 8;
  return c;
}

TEST(ModelInputs, WrongShapesAndIdsAreRejected) {
  const clip::Model m = clip::Model::random(tiny_config(), 7);
  EXPECT_THROW(m.encode_image(torch::zeros({1, 3, 31, 32})), clip::Error);
  EXPECT_THROW(m.encode_image(torch::zeros({3, 32, 32})), clip::Error);
  EXPECT_THROW(m.encode_text(torch::full({1, 8}, 100, torch::kInt64)), clip::Error);
  EXPECT_THROW(m.encode_text(torch::zeros({1, 9}, torch::kInt64)), clip::Error);
  EXPECT_EQ(m.encode_image(torch::zeros({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(m.encode_text(torch::tensor({{1, 5, 99, 0}}, torch::kInt64)).sizes(), (std::vector<int64_t>{1, 16}));
}

TEST(ModelInputs, RandomInitIsSeeded) {
  const auto a = clip::Model::random(tiny_config(), 7).state_dict();
  const auto b = clip::Model::random(tiny_config(), 7).state_dict();
  const auto c = clip::Model::random(tiny_config(), 8).state_dict();
  ASSERT_EQ(a.size(), b.size());
  bool any_differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    any_differs |= !torch::equal(a[i].second, c[i].second);
  }
  EXPECT_TRUE(any_differs);
}

TEST(ModelConfigs, NamedConfigsCoverOpenAIAndOpenClip) {
  for (const char* n : {"RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "vit-b-32", "ViT-B/16", "ViT-L/14",
                        "ViT-L/14@336px", "ViT-H-14", "ViT-g-14", "ViT-bigG-14"})
    EXPECT_NO_THROW(clip::named_config(n)) << n;
  EXPECT_EQ(clip::named_config("ViT-L/14@336px").image_resolution, 336);
  EXPECT_EQ(clip::named_config("RN50").resolved_vision_heads(), 32);
  EXPECT_EQ(clip::named_config("ViT-H-14").resolved_vision_heads(), 16);
  EXPECT_EQ(clip::named_config("ViT-bigG-14").resolved_vision_heads(), 16);
  EXPECT_THROW(clip::named_config("ViT-Q/99"), clip::Error);
}

}  // namespace
