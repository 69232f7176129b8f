// Downloads from a fake Hub on loopback speaking the Hub's URL scheme: /{repo}/resolve/{rev}/{file}
// answering with X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, and a redirect to a blob
// server on another port (another origin) that honours Range. No test reaches the internet.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "clip/error.h"
#include "clip/hub.h"
#include "fake_hub.h"
#include "hub/cache.h"
#include "hub/download.h"
#include "hub_test_util.h"
#include "util/strings.h"

namespace clip::hub {
namespace {

using test::FakeHub;
using test::kCommit;

const std::string kRepo = test::kFakeHubRepo;

HubOptions online(const test::TempDir& dir, const FakeHub& hub) {
  HubOptions o;
  o.cache_dir = dir.file("hub");
  o.openai_cache_dir = dir.file("clip");
  o.endpoint = hub.endpoint();
  o.progress = false;
  o.backoff_seconds = 0.01;
  return o;
}

std::string folder(const HubOptions& o) { return o.cache_dir + "/models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"; }

TEST(HubDownload, PullWritesHuggingfaceHubsLayoutAndThenWorksOffline) {
  FakeHub hub;
  hub.add("open_clip_config.json", test::fixture_open_clip_config());
  hub.add("open_clip_model.safetensors", test::fixture_weights());
  test::TempDir dir;
  HubOptions o = online(dir, hub);
  const ResolvedModel m = resolve_model("ViT-B-32/laion2b_s34b_b79k", o);
  const std::string sha = test::sha256_hex(test::fixture_weights());
  const std::string sha1 = test::git_sha1_hex(test::fixture_open_clip_config());
  EXPECT_EQ(m.weights, folder(o) + "/snapshots/" + kCommit + "/open_clip_model.safetensors");
  EXPECT_EQ(std::filesystem::read_symlink(m.weights).string(), "../../blobs/" + sha);
  EXPECT_EQ(std::filesystem::read_symlink(m.config).string(), "../../blobs/" + sha1);
  EXPECT_EQ(util::read_file(folder(o) + "/blobs/" + sha), test::fixture_weights());
  EXPECT_EQ(util::read_file(folder(o) + "/refs/main"), kCommit);
  EXPECT_FALSE(std::filesystem::exists(folder(o) + "/blobs/" + sha + ".incomplete"));
  EXPECT_TRUE(
      std::filesystem::exists(o.cache_dir + "/.locks/models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K/" + sha + ".lock"));
  EXPECT_EQ(hub.blob_gets, 1);
  // The token was not set, and nothing more is fetched now.
  o.offline = true;
  EXPECT_EQ(resolve_model("hf-hub:" + kRepo, o).weights, m.weights);
  o.offline = false;
  EXPECT_EQ(download_file(o, kRepo, "main", "open_clip_model.safetensors"), m.weights);
  EXPECT_EQ(hub.blob_gets, 1);  // blob already there: only the HEAD
}

TEST(HubDownload, InterruptedDownloadResumesWithRange) {
  FakeHub hub;
  const std::string weights = test::fixture_weights();
  hub.add("open_clip_model.safetensors", weights);
  test::TempDir dir;
  HubOptions o = online(dir, hub);
  o.retries = 0;
  hub.cut_after = 100000;
  EXPECT_THROW(download_file(o, kRepo, "main", "open_clip_model.safetensors"), Error);
  const std::string incomplete = folder(o) + "/blobs/" + test::sha256_hex(weights) + ".incomplete";
  ASSERT_TRUE(std::filesystem::exists(incomplete));
  EXPECT_EQ(std::filesystem::file_size(incomplete), 100000u);
  EXPECT_FALSE(std::filesystem::exists(folder(o) + "/snapshots"));  // nothing visible yet
  const std::string path = download_file(o, kRepo, "main", "open_clip_model.safetensors");
  EXPECT_EQ(util::read_file(path), weights);
  ASSERT_EQ(hub.ranges.size(), 2u);
  EXPECT_EQ(hub.ranges[0], "");
  EXPECT_EQ(hub.ranges[1], "bytes=100000-");
  EXPECT_FALSE(std::filesystem::exists(incomplete));
}

TEST(HubDownload, RetriesResumeWithinOneCall) {
  FakeHub hub;
  hub.add("open_clip_model.safetensors", test::fixture_weights());
  hub.fail_heads = 2;
  hub.cut_after = 5000;
  test::TempDir dir;
  const HubOptions o = online(dir, hub);
  EXPECT_EQ(util::read_file(download_file(o, kRepo, "main", "open_clip_model.safetensors")), test::fixture_weights());
  EXPECT_EQ(hub.blob_gets, 2);
}

TEST(HubDownload, CorruptedBodyIsRejectedBySha256) {
  FakeHub hub;
  hub.add("open_clip_model.safetensors", test::fixture_weights());
  hub.corrupt = true;
  test::TempDir dir;
  const HubOptions o = online(dir, hub);
  try {
    download_file(o, kRepo, "main", "open_clip_model.safetensors");
    FAIL() << "a corrupted body was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
  const std::string blob = folder(o) + "/blobs/" + test::sha256_hex(test::fixture_weights());
  EXPECT_FALSE(std::filesystem::exists(blob));
  EXPECT_FALSE(std::filesystem::exists(blob + ".incomplete"));
  EXPECT_FALSE(std::filesystem::exists(folder(o) + "/snapshots"));
}

TEST(HubDownload, TwoConcurrentPullsFetchTheBlobOnce) {
  FakeHub hub;
  hub.add("open_clip_model.safetensors", test::fixture_weights());
  test::TempDir dir;
  const HubOptions o = online(dir, hub);
  std::string a, b;
  std::thread t1([&] { a = download_file(o, kRepo, "main", "open_clip_model.safetensors"); });
  std::thread t2([&] { b = download_file(o, kRepo, "main", "open_clip_model.safetensors"); });
  t1.join();
  t2.join();
  EXPECT_EQ(a, b);
  EXPECT_EQ(util::read_file(a), test::fixture_weights());
  EXPECT_EQ(hub.blob_gets, 1);
}

TEST(HubDownload, GatedRepoNeedsATokenThatOnlyTheEndpointSees) {
  FakeHub hub;
  hub.add("open_clip_config.json", test::fixture_open_clip_config());
  hub.add("open_clip_model.safetensors", test::fixture_weights());
  hub.required_token = "hf_secret_token";
  test::TempDir dir;
  HubOptions o = online(dir, hub);
  try {
    resolve_model("ViT-B-32/laion2b_s34b_b79k", o);
    FAIL() << "a gated repo was read without a token";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    const std::string m = e.what();
    EXPECT_NE(m.find("gated"), std::string::npos) << m;
    EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
  }
  o.token = "hf_wrong";
  try {
    resolve_model("ViT-B-32/laion2b_s34b_b79k", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("hf_wrong"), std::string::npos) << "the token is never printed";
  }
  o.token = "hf_secret_token";
  EXPECT_NO_THROW(resolve_model("ViT-B-32/laion2b_s34b_b79k", o));
  EXPECT_FALSE(hub.blob_saw_authorization) << "the token went to the blob server (another origin)";
}

TEST(HubDownload, NotFoundNamesRepoRevisionAndFile) {
  FakeHub hub;
  test::TempDir dir;
  const HubOptions o = online(dir, hub);
  try {
    download_file(o, kRepo, "v1.0", "open_clip_model.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    const std::string m = e.what();
    EXPECT_NE(m.find(kRepo), std::string::npos) << m;
    EXPECT_NE(m.find("v1.0"), std::string::npos) << m;
    EXPECT_NE(m.find("open_clip_model.safetensors"), std::string::npos) << m;
  }
  // A repo with only the pickle: the safetensors 404s are skipped, the .bin is used.
  hub.add("open_clip_config.json", test::fixture_open_clip_config());
  hub.add("open_clip_pytorch_model.bin", std::string(3000, 'b'));
  EXPECT_TRUE(util::ends_with(resolve_model("hf-hub:" + kRepo, o).weights, "/open_clip_pytorch_model.bin"));
}

TEST(HubDownload, OfflineNeverTouchesTheNetwork) {
  FakeHub hub;
  hub.add("open_clip_config.json", test::fixture_open_clip_config());
  hub.add("open_clip_model.safetensors", test::fixture_weights());
  test::TempDir dir;
  HubOptions o = online(dir, hub);
  o.offline = true;
  EXPECT_THROW(resolve_model("ViT-B-32/laion2b_s34b_b79k", o), Error);
  EXPECT_EQ(hub.blob_gets, 0);
}

TEST(HubDownload, UnreachableEndpointSaysSo) {
  test::TempDir dir;
  HubOptions o;
  o.cache_dir = dir.file("hub");
  o.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  o.retries = 0;
  o.progress = false;
  try {
    download_file(o, kRepo, "main", "open_clip_config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("--offline"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace clip::hub
