// Loading checks a checkpoint against its config before building anything: the shapes computed
// from a config (model/parameter_shapes.h) against the modules that config builds, the bounds on
// config values, and a tiny file whose metadata claims a huge model failing fast without the
// memory that model would take.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <string>

#include "clip/config.h"
#include "clip/error.h"
#include "clip/model.h"
#include "io/safetensors.h"
#include "model/modules.h"
#include "model/parameter_shapes.h"
#include "test_paths.h"

namespace {

clip::ModelConfig small_vit() {
  clip::ModelConfig c;
  c.embed_dim = 24;
  c.image_resolution = 32;
  c.vision_layers = 2;
  c.vision_width = 32;
  c.vision_patch_size = 8;
  c.vision_heads = 2;
  c.vision_mlp_ratio = 2.5;
  c.context_length = 9;
  c.vocab_size = 100;
  c.transformer_width = 16;
  c.transformer_heads = 2;
  c.transformer_layers = 3;
  c.text_mlp_ratio = 3.0;
  return c;
}

clip::ModelConfig small_resnet() {
  clip::ModelConfig c = small_vit();
  c.vision_patch_size = 0;
  c.vision_layers = 0;
  c.vision_resnet_layers = {1, 2, 1, 2};
  c.vision_width = 8;
  c.vision_heads = 4;
  c.image_resolution = 64;
  return c;
}

TEST(ParameterShapes, MatchTheModulesAConfigBuilds) {
  for (const clip::ModelConfig& c : {small_vit(), small_resnet()}) {
    c.validate("test config");
    auto m = std::make_shared<clip::model::ClipModuleImpl>(c);
    std::map<std::string, torch::Tensor> built;
    for (const auto& p : m->named_parameters(true)) built[p.key()] = p.value();
    for (const auto& b : m->named_buffers(true)) built[b.key()] = b.value();
    const auto shapes = clip::model::parameter_shapes(c);
    std::map<std::string, const clip::model::ParameterShape*> computed;
    for (const auto& s : shapes) EXPECT_TRUE(computed.emplace(s.name, &s).second) << "repeated " << s.name;
    EXPECT_EQ(computed.size(), built.size()) << (c.is_vit() ? "ViT" : "ResNet");
    for (const auto& [name, t] : built) {
      auto it = computed.find(name);
      if (it == computed.end()) {
        ADD_FAILURE() << name << " is built but not in parameter_shapes";
        continue;
      }
      EXPECT_EQ(t.sizes().vec(), it->second->shape) << name;
      EXPECT_EQ(t.is_floating_point(), it->second->floating) << name;
    }
  }
}

std::string error_loading(const std::string& path) {
  try {
    clip::Model::load(path);
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigBounds, OutOfRangeValuesAreRefusedByName) {
  struct Case {
    const char* field;
    void (*set)(clip::ModelConfig&);
  };
  const Case cases[] = {
      {"vision_width is 40000, expected 1 to 32768", [](clip::ModelConfig& c) { c.vision_width = 40000; }},
      {"transformer_layers is 5000, expected 1 to 1024", [](clip::ModelConfig& c) { c.transformer_layers = 5000; }},
      {"vision_layers is 0, expected 1 to 1024", [](clip::ModelConfig& c) { c.vision_layers = 0; }},
      {"image_resolution is 100000, expected 1 to 8192", [](clip::ModelConfig& c) { c.image_resolution = 100000; }},
      {"vision_patch_size is 2048, expected 0 to 1024", [](clip::ModelConfig& c) { c.vision_patch_size = 2048; }},
      {"context_length is 1, expected 2 to 16384", [](clip::ModelConfig& c) { c.context_length = 1; }},
      {"vocab_size is 3000000, expected 1 to 2097152", [](clip::ModelConfig& c) { c.vocab_size = 3000000; }},
      {"transformer_heads is 2000, expected 0 to 1024", [](clip::ModelConfig& c) { c.transformer_heads = 2000; }},
      {"text_mlp_ratio must be in (0, 64]", [](clip::ModelConfig& c) { c.text_mlp_ratio = 1e9; }},
  };
  for (const Case& k : cases) {
    clip::ModelConfig c = small_vit();
    k.set(c);
    try {
      c.validate("x.json");
      ADD_FAILURE() << k.field << ": accepted";
    } catch (const clip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("x.json: invalid config: ") + k.field), std::string::npos)
          << e.what();
    }
  }
}

// Resets the peak resident memory (VmHWM) to the current RSS (Linux >= 4.0).
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}
long peak_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}
long current_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// A 1 KB safetensors file whose metadata claims a ViT of width 2048 (about 500 MB in fp32): the
// first tensor's shape contradicts it, which loading says before building anything.
TEST(ModelLoading, HugeConfigInTinyFileFailsFastWithoutAllocating) {
  const std::string dir = clip::test::fresh_temp_dir("huge_config");
  const std::string path = dir + "/tiny.safetensors";
  const std::string config = R"({"embed_dim": 512, "image_resolution": 224, "vision_layers": 2, "vision_width": 2048,
      "vision_patch_size": 32, "context_length": 77, "vocab_size": 49408, "transformer_width": 512,
      "transformer_heads": 8, "transformer_layers": 1})";
  const std::vector<float> conv(8 * 3 * 32 * 32, 0.5f);
  clip::io::write_safetensors(
      path, {{"visual.conv1.weight", clip::io::DType::kF32, {8, 3, 32, 32}, conv.data(), conv.size() * 4}},
      {{"format", "pt"}, {"config", config}});
  if (!reset_peak_rss()) GTEST_SKIP() << "cannot reset the peak RSS through /proc/self/clear_refs";
  const long before = current_rss_kib();
  const std::string e = error_loading(path);
  const long peak = peak_rss_kib();
  EXPECT_EQ(e, path +
                   ": tensor \"visual.conv1.weight\" has shape [8, 3, 32, 32], expected [2048, 3, 32, 32] for the "
                   "config from its metadata");
  ASSERT_GT(before, 0);
  ASSERT_GT(peak, 0);
  // The model the metadata describes takes ~500 MB; checking the file against it takes none.
  EXPECT_LT(peak - before, 16 * 1024) << "peak RSS grew by " << (peak - before) / 1024 << " MiB while loading";
}

// The same check for every way a config arrives: an explicit --config file that does not fit the
// checkpoint, and a missing tensor (checked before building too).
TEST(ModelLoading, ConfigFileAndMissingTensorsAreCheckedFirst) {
  const std::string dir = clip::test::fresh_temp_dir("config_mismatch");
  const std::string path = dir + "/tiny.safetensors";
  const std::vector<float> conv(8 * 3 * 32 * 32, 0.5f);
  clip::io::write_safetensors(
      path, {{"visual.conv1.weight", clip::io::DType::kF32, {8, 3, 32, 32}, conv.data(), conv.size() * 4}},
      {{"format", "pt"}});
  const std::string config_path = dir + "/big.json";
  std::ofstream(config_path) << R"({"embed_dim": 64, "image_resolution": 64, "vision_layers": 1, "vision_width": 8,
      "vision_patch_size": 32, "vision_heads": 1, "context_length": 8, "vocab_size": 100, "transformer_width": 16,
      "transformer_heads": 1, "transformer_layers": 1})";
  clip::LoadOptions o;
  o.config_path = config_path;
  try {
    clip::Model::load(path, o);
    ADD_FAILURE() << "loaded";
  } catch (const clip::Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(
        m.rfind(path + ": checkpoint does not match the model (the config from " + config_path + ")\n  missing: ", 0),
        0u)
        << m;
    EXPECT_NE(m.find("visual.class_embedding"), std::string::npos) << m;
  }
}

}  // namespace

namespace {

// The modules' linear layer and token embedding draw what torch::nn::Linear and Embedding draw
// (so a seeded Model::random is unchanged), and kNone (loading: every value then comes from the
// checkpoint) draws nothing.
TEST(LinearLayer, DrawsWhatTorchLinearAndEmbeddingDrawOrNothing) {
  torch::manual_seed(3);
  torch::nn::Linear torch_linear(12, 7);
  const torch::Tensor after_torch = torch::rand({4});
  torch::manual_seed(3);
  clip::model::Linear ours(12, 7, clip::model::ParameterInit::kRandom);
  EXPECT_TRUE(torch::equal(ours->weight, torch_linear->weight));
  EXPECT_TRUE(torch::equal(ours->bias, torch_linear->bias));
  EXPECT_TRUE(torch::equal(torch::rand({4}), after_torch));  // the generator left in the same state
  torch::manual_seed(3);
  const torch::Tensor first_draws = torch::rand({4});
  torch::manual_seed(3);
  clip::model::Linear uninitialized(12, 7, clip::model::ParameterInit::kNone);
  EXPECT_TRUE(torch::equal(torch::rand({4}), first_draws));  // nothing drawn
  EXPECT_EQ(uninitialized->weight.sizes(), torch::IntArrayRef({7, 12}));
  EXPECT_EQ(uninitialized->bias.sizes(), torch::IntArrayRef({7}));
  EXPECT_EQ(uninitialized->named_parameters().keys(), torch_linear->named_parameters().keys());

  // The token embedding likewise, and its lookup.
  torch::manual_seed(4);
  torch::nn::Embedding torch_embedding(50, 6);
  torch::manual_seed(4);
  clip::model::Embedding embedding(50, 6, clip::model::ParameterInit::kRandom);
  EXPECT_TRUE(torch::equal(embedding->weight, torch_embedding->weight));
  const torch::Tensor tokens = torch::tensor({{3, 0, 49}, {7, 7, 1}}, torch::kInt64);
  EXPECT_TRUE(torch::equal(embedding(tokens), torch_embedding(tokens)));
  EXPECT_EQ(embedding->named_parameters().keys(), torch_embedding->named_parameters().keys());
  torch::manual_seed(4);
  const torch::Tensor first = torch::rand({4});
  torch::manual_seed(4);
  clip::model::Embedding none(50, 6, clip::model::ParameterInit::kNone);
  EXPECT_TRUE(torch::equal(torch::rand({4}), first));
}

}  // namespace
