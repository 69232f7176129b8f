// Resolution from a cache written beforehand in huggingface_hub's exact layout, offline.
#include <gtest/gtest.h>

#include <filesystem>

#include "clip/error.h"
#include "clip/hub.h"
#include "hub/cache.h"
#include "hub_test_util.h"
#include "util/strings.h"

namespace clip::hub {
namespace {

using test::kCommit;
using test::put_in_cache;

const std::string kRepo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K";

HubOptions offline_options(const test::TempDir& dir) {
  HubOptions o;
  o.cache_dir = dir.file("hub");
  o.openai_cache_dir = dir.file("clip");
  o.offline = true;
  o.endpoint = "http://127.0.0.1:9";  // never reached: offline
  return o;
}

TEST(HubCache, PythonLayoutResolvesOfflineForEverySpelling) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  put_in_cache(o.cache_dir, kRepo, "open_clip_config.json", test::fixture_open_clip_config());
  put_in_cache(o.cache_dir, kRepo, "open_clip_model.safetensors", test::fixture_weights());
  const std::string snapshot = o.cache_dir + "/models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K/snapshots/" + kCommit;
  for (const std::string& name :
       std::vector<std::string>{"ViT-B-32/laion2b_s34b_b79k", "ViT-B-32::laion2b-s34b-b79k",
                                "ViT-B-32__laion2b-s34b-b79k", "open_clip:ViT-B-32/laion2b_s34b_b79k",
                                "hf-hub:" + kRepo, "hf-hub:" + kRepo + "@main", "hf-hub:" + kRepo + "@" + kCommit}) {
    const ResolvedModel m = resolve_model(name, o);
    EXPECT_EQ(m.weights, snapshot + "/open_clip_model.safetensors") << name;
    EXPECT_EQ(m.config, snapshot + "/open_clip_config.json") << name;
    ASSERT_TRUE(m.preprocess) << name;
    EXPECT_EQ(m.preprocess->interpolation, "bilinear");
    EXPECT_EQ(m.preprocess->resize_mode, "squash");
    EXPECT_FLOAT_EQ(m.preprocess->mean[1], 0.5f);
  }
  EXPECT_EQ(resolve_model("ViT-B-32", o, "laion2b_s34b_b79k").weights, snapshot + "/open_clip_model.safetensors");
  // The file read through the link is the blob.
  EXPECT_EQ(util::read_file(snapshot + "/open_clip_model.safetensors"), test::fixture_weights());
}

TEST(HubCache, PrefersSafetensorsOverPickles) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  put_in_cache(o.cache_dir, kRepo, "open_clip_config.json", test::fixture_open_clip_config());
  put_in_cache(o.cache_dir, kRepo, "open_clip_pytorch_model.bin", std::string(2000, 'x'));
  EXPECT_TRUE(util::ends_with(resolve_model("hf-hub:" + kRepo, o).weights, "/open_clip_pytorch_model.bin"));
  put_in_cache(o.cache_dir, kRepo, "open_clip_model.safetensors", test::fixture_weights());
  EXPECT_TRUE(util::ends_with(resolve_model("hf-hub:" + kRepo, o).weights, "/open_clip_model.safetensors"));
}

TEST(HubCache, TransformersRepoLayout) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  const std::string repo = "openai/clip-vit-base-patch32";
  put_in_cache(o.cache_dir, repo, "config.json", R"({"model_type": "clip"})");
  put_in_cache(o.cache_dir, repo, "pytorch_model.bin", std::string(2000, 'p'));
  put_in_cache(o.cache_dir, repo, "model.safetensors", test::fixture_weights());
  const ResolvedModel m = resolve_model("hf-hub:" + repo, o);
  EXPECT_TRUE(util::ends_with(m.weights, "/model.safetensors")) << m.weights;
  EXPECT_TRUE(util::ends_with(m.config, "/config.json"));
  EXPECT_FALSE(m.preprocess);
}

TEST(HubCache, NestedFilesLinkOneLevelUpMore) {
  test::TempDir dir;
  const std::string root = dir.file("hub");
  const RepoCache cache(root, "org/name");
  std::filesystem::create_directories(cache.folder() + "/blobs");
  util::write_file_atomic(cache.blob_path("abc"), "x");
  cache.link_snapshot(kCommit, "onnx/visual/model.onnx", "abc");
  EXPECT_EQ(std::filesystem::read_symlink(cache.snapshot_path(kCommit, "onnx/visual/model.onnx")).string(),
            "../../../../blobs/abc");
  cache.write_ref("main", kCommit);
  EXPECT_EQ(util::read_file(cache.folder() + "/refs/main"), kCommit);  // no newline, as huggingface_hub
  EXPECT_EQ(cache.cached_file("main", "onnx/visual/model.onnx"),
            cache.snapshot_path(kCommit, "onnx/visual/model.onnx"));
  EXPECT_EQ(cache.lock_path("abc"), root + "/.locks/models--org--name/abc.lock");
}

TEST(HubCache, OfflineMissSaysWhichFilesToPlaceWhere) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  try {
    resolve_model("ViT-B-32/laion2b_s34b_b79k", o);
    FAIL() << "resolved without files";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    const std::string m = e.what();
    EXPECT_NE(m.find(o.cache_dir + "/models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K/snapshots/COMMIT/"
                                   "{open_clip_config.json,open_clip_model.safetensors}"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("refs/main"), std::string::npos) << m;
    EXPECT_NE(m.find("HF_HUB_OFFLINE"), std::string::npos) << m;
  }
}

TEST(HubCache, BrokenLinkIsNotACachedFile) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  put_in_cache(o.cache_dir, kRepo, "open_clip_config.json", test::fixture_open_clip_config());
  put_in_cache(o.cache_dir, kRepo, "open_clip_model.safetensors", test::fixture_weights());
  const RepoCache cache(o.cache_dir, kRepo);
  std::filesystem::remove(cache.blob_path(test::sha256_hex(test::fixture_weights())));
  EXPECT_THROW(resolve_model("hf-hub:" + kRepo, o), Error);
}

TEST(HubCache, OpenAiNamesUseOpenaisCacheFirst) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  const std::string pt = dir.write("clip/ViT-B-32.pt", "a TorchScript archive");
  const ResolvedModel m = resolve_model("ViT-B/32", o);
  EXPECT_EQ(m.weights, pt);
  EXPECT_TRUE(m.config.empty());
  ASSERT_TRUE(m.preprocess);
  EXPECT_EQ(m.preprocess->interpolation, "bicubic");
}

TEST(HubCache, ExistingPathsAndLocalDirs) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  const std::string file = dir.write("ViT-B-32", "weights");  // a file named like a model: the path wins
  EXPECT_EQ(resolve_model(file, o).weights, file);
  dir.write("m/open_clip_config.json", test::fixture_open_clip_config());
  dir.write("m/open_clip_pytorch_model.bin", "bin");
  dir.write("m/open_clip_model.safetensors", "st");
  const ResolvedModel m = resolve_model("local-dir:" + dir.file("m"), o);
  EXPECT_EQ(m.weights, dir.file("m/open_clip_model.safetensors"));
  EXPECT_EQ(m.config, dir.file("m/open_clip_config.json"));
  EXPECT_TRUE(m.preprocess);
  EXPECT_EQ(resolve_model(dir.file("m"), o).weights, m.weights);
  try {
    resolve_model("local-dir:" + dir.file("none"), o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

TEST(HubCache, HostilePreprocessCfgIsRefused) {
  test::TempDir dir;
  const HubOptions o = offline_options(dir);
  for (const std::string bad : {R"({"size": 100000})", R"({"interpolation": "lanczos"})", R"({"resize_mode": "crop"})",
                                R"({"std": [0, 1, 1]})", R"({"fill_color": 300})", R"({"size": [224, 200]})"}) {
    dir.write("m/open_clip_config.json", test::fixture_open_clip_config(bad));
    dir.write("m/open_clip_model.safetensors", "st");
    EXPECT_THROW(resolve_model(dir.file("m"), o), Error) << bad;
  }
}

}  // namespace
}  // namespace clip::hub
