// Helpers of the hub tests: digests as the Hub names blobs, a cache written in huggingface_hub's
// exact layout, the fixture checkpoint as file content.
#pragma once

#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "temp_dir.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace clip::test {

inline std::string hex_digest(const std::string& data, bool git_sha1) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, git_sha1 ? EVP_sha1() : EVP_sha256(), nullptr);
  if (git_sha1) {
    const std::string header = "blob " + std::to_string(data.size()) + std::string(1, '\0');
    EVP_DigestUpdate(ctx, header.data(), header.size());
  }
  EVP_DigestUpdate(ctx, data.data(), data.size());
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, d, &n);
  EVP_MD_CTX_free(ctx);
  std::string out;
  static const char* hex = "0123456789abcdef";
  for (unsigned int i = 0; i < n; ++i) out += {hex[d[i] >> 4], hex[d[i] & 15]};
  return out;
}

inline std::string sha256_hex(const std::string& data) { return hex_digest(data, false); }
inline std::string git_sha1_hex(const std::string& data) { return hex_digest(data, true); }

// The tiny ViT fixture (fp16 safetensors) stands in for a model's weights.
inline std::string fixture_weights() {
  return util::read_file(std::string(CLIP_TEST_DATA_DIR) + "/fixtures/models/tiny-vit-f16.safetensors");
}

// open_clip_config.json describing the fixture, with a preprocess_cfg.
inline std::string fixture_open_clip_config(const std::string& preprocess = "") {
  return R"({"model_cfg": {"embed_dim": 64, "quick_gelu": true,
  "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 64},
  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}},
 "preprocess_cfg": )" +
         (preprocess.empty()
              ? std::string(
                    R"({"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"})")
              : preprocess) +
         "}\n";
}

inline const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

// Writes one file of `repo` into `root` as huggingface_hub does: blobs/<etag>, a relative symlink
// snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per folder), refs/<revision>.
inline void put_in_cache(const std::string& root, const std::string& repo, const std::string& file,
                         const std::string& data, const std::string& revision = "main",
                         const std::string& commit = kCommit) {
  const std::string folder =
      root + "/models--" + repo.substr(0, repo.find('/')) + "--" + repo.substr(repo.find('/') + 1);
  const bool lfs = data.size() > 1000;  // as the Hub: large files in LFS (sha256), small in git (sha1)
  const std::string etag = lfs ? sha256_hex(data) : git_sha1_hex(data);
  std::filesystem::create_directories(folder + "/blobs");
  std::filesystem::create_directories(folder + "/refs");
  util::write_file_atomic(folder + "/blobs/" + etag, data);
  const std::filesystem::path link = folder + "/snapshots/" + commit + "/" + file;
  std::filesystem::create_directories(link.parent_path());
  std::string target = "../../";
  for (char c : file)
    if (c == '/') target += "../";
  std::filesystem::remove(link);
  std::filesystem::create_symlink(target + "blobs/" + etag, link);
  if (revision != commit) util::write_file_atomic(folder + "/refs/" + revision, commit);
}

}  // namespace clip::test
