// Models by name on the command line: `clip models list|pull|path|rm`, every spelling of a name
// resolving to the same files of a cache written in huggingface_hub's exact layout, offline use,
// unknown names, and the preprocessing a model folder ships with (open_clip's preprocess_cfg)
// honoured by `clip embed`. Downloads come from a fake Hub on loopback; no test reaches the internet.
#include <gtest/gtest.h>
#include <stdlib.h>  // setenv, unsetenv

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_run.h"
#include "cli/exit_status.h"
#include "clip/image.h"
#include "hub/fake_hub.h"
#include "hub/hub_test_util.h"
#include "temp_dir.h"
#include "test_paths.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace {

using clip::ErrorKind;
using clip::cli::exit_status_for;
using clip::test::kCommit;
using clip::test::kFakeHubRepo;
using clip::test::run_clip;

const std::string kRepoFolder = "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K";

// The environment huggingface_hub reads, pointed into one temporary folder for a test (HOME too,
// so that neither ~/.cache/clip nor a token of the machine is seen); restored at the end.
class HubEnvironment {
 public:
  explicit HubEnvironment(const clip::test::TempDir& dir) : cache_(dir.file("hub")) {
    for (const char* name : kNames) {
      const char* v = std::getenv(name);
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    ::setenv("HOME", dir.path().c_str(), 1);
    ::setenv("HF_HUB_CACHE", cache().c_str(), 1);
    ::setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);  // nothing listens there: no accidental network
  }
  ~HubEnvironment() {
    for (size_t i = 0; i < saved_.size(); ++i) {
      if (saved_[i]) ::setenv(kNames[i], saved_[i]->c_str(), 1);
      else ::unsetenv(kNames[i]);
    }
  }
  const std::string& cache() const { return cache_; }
  std::string repo_folder() const { return cache_ + "/" + kRepoFolder; }

 private:
  static constexpr const char* kNames[] = {"HOME",     "HF_HUB_CACHE",  "HF_HOME",        "HF_ENDPOINT",
                                           "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "XDG_CACHE_HOME"};
  std::string cache_;
  std::vector<std::optional<std::string>> saved_;
};

// The fixture model as an open_clip repo in the cache, exactly as huggingface_hub lays it out.
void fill_cache(const std::string& cache, const std::string& repo = kFakeHubRepo) {
  clip::test::put_in_cache(cache, repo, "open_clip_config.json", clip::test::fixture_open_clip_config());
  clip::test::put_in_cache(cache, repo, "open_clip_model.safetensors", clip::test::fixture_weights());
}

std::string snapshot(const std::string& cache, const std::string& folder = kRepoFolder) {
  return cache + "/" + folder + "/snapshots/" + kCommit;
}

std::string image(const std::string& name) { return clip::test::data_dir() + "/images/files/" + name; }

std::vector<float> floats(const std::string& npy) {
  const clip::util::NpyArray a = clip::util::read_npy(npy);
  EXPECT_EQ(a.dtype, "<f4");
  std::vector<float> v(a.data.size() / 4);
  std::memcpy(v.data(), a.data.data(), v.size() * 4);
  return v;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST(ModelsCli, ListShowsTheTableAndWhatIsCached) {
  clip::test::TempDir dir;
  HubEnvironment env(dir);
  auto r = run_clip("models list --json 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  bool seen = false;
  for (const auto& row : j) {
    EXPECT_FALSE(row["cached"].get<bool>()) << row.dump();
    if (row["name"] == "ViT-B-32/laion2b_s34b_b79k") seen = row["repo"] == kFakeHubRepo;
    if (row["name"] == "ViT-B-32/openai") {
      EXPECT_EQ(row["openai_name"], "ViT-B/32");
    }
  }
  EXPECT_TRUE(seen);
  r = run_clip("models list --cached --json 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(nlohmann::json::parse(r.output).empty()) << r.output;

  fill_cache(env.cache());
  r = run_clip("models list --cached --json 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 1u) << r.output;
  EXPECT_EQ(j[0]["name"], "ViT-B-32/laion2b_s34b_b79k");
  EXPECT_TRUE(j[0]["cached"].get<bool>());
  EXPECT_EQ(j[0]["size_bytes"].get<uint64_t>(),
            clip::test::fixture_weights().size() + clip::test::fixture_open_clip_config().size());
  r = run_clip("models list --cached 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ViT-B-32/laion2b_s34b_b79k"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("yes, "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cache: " + env.cache()), std::string::npos) << r.output;
}

TEST(ModelsCli, PullFromTheHubThenPathOfflineThenRm) {
  clip::test::TempDir dir;
  HubEnvironment env(dir);
  clip::test::FakeHub hub;
  hub.add("open_clip_config.json", clip::test::fixture_open_clip_config());
  hub.add("open_clip_model.safetensors", clip::test::fixture_weights());
  ::setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
  const std::string weights = snapshot(env.cache()) + "/open_clip_model.safetensors";

  auto r = run_clip("models pull ViT-B-32/laion2b_s34b_b79k 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(first_line(r.output), weights);
  const std::string sha = clip::test::sha256_hex(clip::test::fixture_weights());
  EXPECT_EQ(std::filesystem::read_symlink(weights).string(), "../../blobs/" + sha);
  EXPECT_EQ(clip::util::read_file(env.repo_folder() + "/refs/main"), kCommit);
  EXPECT_EQ(hub.blob_gets, 1);

  // `models path` never downloads; with the Hub gone and HF_HUB_OFFLINE=1 it still finds it.
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  r = run_clip("models path ViT-B-32/laion2b_s34b_b79k 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(first_line(r.output), weights);

  r = run_clip("models rm ViT-B-32::laion2b-s34b-b79k 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("removed " + env.repo_folder()), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(env.repo_folder()));
  r = run_clip("models path ViT-B-32/laion2b_s34b_b79k 2>&1");
  EXPECT_EQ(r.status, exit_status_for(ErrorKind::kNotFound)) << r.output;
  r = run_clip("models rm ViT-B-32/laion2b_s34b_b79k 2>&1");
  EXPECT_EQ(r.status, exit_status_for(ErrorKind::kNotFound)) << r.output;
  EXPECT_NE(r.output.find("is not in the cache"), std::string::npos) << r.output;
}

// Every spelling users have names the same files of a cache the Python tools wrote, and `clip
// embed` gives the same bytes through each.
TEST(ModelsCli, EverySpellingEmbedsFromTheSameCachedFiles) {
  clip::test::TempDir dir;
  HubEnvironment env(dir);
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  fill_cache(env.cache());
  // OpenAI's name is open_clip's ViT-B-32/openai; clip-retrieval's bare -quickgelu architecture
  // takes its last tag (metaclip_fullcc). Their repos hold the same fixture files here.
  fill_cache(env.cache(), "timm/vit_base_patch32_clip_224.openai");
  fill_cache(env.cache(), "timm/vit_base_patch32_clip_224.metaclip_2pt5b");
  const std::string laion = snapshot(env.cache());
  const std::string openai = snapshot(env.cache(), "models--timm--vit_base_patch32_clip_224.openai");
  const std::string metaclip = snapshot(env.cache(), "models--timm--vit_base_patch32_clip_224.metaclip_2pt5b");
  const std::vector<std::pair<std::string, std::string>> spellings{
      {"ViT-B-32/laion2b_s34b_b79k", laion},
      {"ViT-B-32 --pretrained laion2b_s34b_b79k", laion},
      {"vit-b-32 --pretrained LAION2B-S34B-B79K", laion},
      {"hf-hub:" + kFakeHubRepo, laion},
      {"hf-hub:" + kFakeHubRepo + "@main", laion},
      {"local-dir:" + laion, laion},
      {laion, laion},
      {"ViT-B-32::laion2b-s34b-b79k", laion},
      {"ViT-B-32__laion2b-s34b-b79k", laion},
      {"ViT-B/32", openai},
      {"ViT-B-32__openai", openai},
      {"open_clip:ViT-B-32-quickgelu", metaclip},
  };
  std::string reference;
  for (const auto& [spelling, folder] : spellings) {
    SCOPED_TRACE(spelling);
    auto r = run_clip("models path " + spelling + " 2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(first_line(r.output), folder + "/open_clip_model.safetensors");
    const std::string out = dir.file("emb.npy");
    r = run_clip("embed --model " + spelling + " --image " + image("astronaut_q95.jpg") + " --text 'a photo' --out " +
                 out + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string bytes = clip::util::read_file(out);
    if (reference.empty()) reference = bytes;
    EXPECT_EQ(bytes, reference);
  }
}

TEST(ModelsCli, OfflineWithAnEmptyCacheSaysWhichFilesToPlaceWhere) {
  clip::test::TempDir dir;
  HubEnvironment env(dir);
  // --offline, then HF_HUB_OFFLINE=1 (the endpoint is unreachable anyway: no attempt is made).
  for (const bool by_variable : {false, true}) {
    SCOPED_TRACE(by_variable ? "HF_HUB_OFFLINE=1" : "--offline");
    if (by_variable) ::setenv("HF_HUB_OFFLINE", "1", 1);
    const auto r = run_clip("embed --model ViT-B-32/laion2b_s34b_b79k" + std::string(by_variable ? "" : " --offline") +
                            " --text a --out " + dir.file("x.npy") + " 2>&1");
    EXPECT_EQ(r.status, exit_status_for(ErrorKind::kNotFound)) << r.output;
    EXPECT_NE(r.output.find("downloads are off (--offline or HF_HUB_OFFLINE=1)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(env.repo_folder() + "/snapshots/COMMIT/{open_clip_config.json,"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find(env.repo_folder() + "/refs/main"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("clip models pull ViT-B-32/laion2b_s34b_b79k"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir.file("x.npy")));
  }
}

TEST(ModelsCli, UnknownNamesSuggestTheClosestKnownOnes) {
  clip::test::TempDir dir;
  HubEnvironment env(dir);
  auto r = run_clip("embed --model ViT-B-32/laion2b_s34b_b97k --text a --out " + dir.file("x.npy") + " 2>&1");
  EXPECT_EQ(r.status, exit_status_for(ErrorKind::kNotFound)) << r.output;
  EXPECT_NE(r.output.find("ViT-B-32/laion2b_s34b_b79k"), std::string::npos) << r.output;
  r = run_clip("models path ViT-B/23 2>&1");
  EXPECT_EQ(r.status, exit_status_for(ErrorKind::kNotFound)) << r.output;
  EXPECT_NE(r.output.find("ViT-B/32"), std::string::npos) << r.output;
}

// open_clip's preprocess_cfg (here bilinear + squash, mean and std 0.5) is what `clip embed` uses
// for a model folder: the features of a JPEG equal those of the pixels Pillow gives for that cfg
// (tools/make_preprocess_cfg_fixtures.py), written as a 32x32 PNG that the same model takes as
// it is. With CLIP's default preprocessing the two differ, so the comparison can fail.
TEST(ModelsCli, EmbedUsesThePreprocessingTheModelShipsWith) {
  clip::test::TempDir dir;
  HubEnvironment env(dir);
  const std::string weights = clip::test::fixture_weights();
  const std::string cfg = dir.path() + "/cfg", plain = dir.path() + "/plain";
  dir.write("cfg/open_clip_model.safetensors", weights);
  dir.write("cfg/open_clip_config.json", clip::test::fixture_open_clip_config());
  dir.write("plain/open_clip_model.safetensors", weights);
  dir.write("plain/open_clip_config.json", clip::test::fixture_open_clip_config("{}"));

  const clip::util::NpyArray expected = clip::util::read_npy(
      clip::test::data_dir() + "/images/expected_cfg/astronaut_q95.jpg.bilinear.squash.32.rgb8.npy");
  ASSERT_EQ(expected.shape, (std::vector<int64_t>{32, 32, 3}));
  clip::image::Rgb8 pillow;
  pillow.width = pillow.height = 32;
  pillow.pixels.assign(expected.data.begin(), expected.data.end());
  const std::string pillow_png = dir.file("pillow.png");
  clip::image::write_png(pillow_png, pillow);

  auto embed = [&](const std::string& model, const std::string& file) {
    const std::string out = dir.file("e.npy");
    const auto r = run_clip("embed --model " + model + " --image " + file + " --out " + out + " 2>&1");
    EXPECT_EQ(r.status, 0) << r.output;
    return floats(out);
  };
  const std::string jpeg = image("astronaut_q95.jpg");
  for (const std::string& model :
       {"local-dir:" + cfg, cfg, cfg + "/open_clip_model.safetensors", std::string("hf-hub:") + kFakeHubRepo}) {
    SCOPED_TRACE(model);
    if (model.rfind("hf-hub:", 0) == 0) {  // the same folder through the cache, offline
      fill_cache(env.cache());
      ::setenv("HF_HUB_OFFLINE", "1", 1);
    }
    EXPECT_LT(max_abs_diff(embed(model, jpeg), embed(model, pillow_png)), 1e-5f);
  }
  // CLIP's default (bicubic, shortest side, OpenAI's mean and std) gives other features for the JPEG.
  EXPECT_GT(max_abs_diff(embed("local-dir:" + plain, jpeg), embed("local-dir:" + plain, pillow_png)), 1e-3f);
  // The cfg's mean and std count: same pixels, other normalization, other features.
  EXPECT_GT(max_abs_diff(embed("local-dir:" + cfg, pillow_png), embed("local-dir:" + plain, pillow_png)), 1e-3f);
}

}  // namespace
