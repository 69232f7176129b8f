// Where tests find their data: tests/data (shipped with the repo) and ../shared/fixtures
// (optional; CLIP_FIXTURES overrides it). Tests that need the shared fixtures skip by name.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>
#include <cstdlib>
#include <string>

namespace clip::test {

inline std::string data_dir() { return CLIP_TEST_DATA_DIR; }
inline std::string source_dir() { return CLIP_SOURCE_DIR; }

inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The shared fixtures folder, or "" when absent.
inline std::string shared_fixtures() {
  const char* env = std::getenv("CLIP_FIXTURES");
  const std::string dir = env && *env ? env : CLIP_SHARED_FIXTURES_DIR;
  return path_exists(dir + "/README.md") ? dir : "";
}

// A new empty folder under the test temp dir, unique to this process: <TempDir>/clip_<name>_<pid>.
inline std::string fresh_temp_dir(const std::string& name) {
  const std::string dir = std::string(::testing::TempDir()) + "/clip_" + name + "_" + std::to_string(::getpid());
  if (std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str()) != 0)
    ADD_FAILURE() << "cannot create " << dir;
  return dir;
}

}  // namespace clip::test

// Skips the current test when Debian's dataset-fashion-mnist (installed by scripts/setup.sh) is absent.
#define CLIP_REQUIRE_FASHION_MNIST()                                                              \
  do {                                                                                            \
    if (!clip::test::path_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) \
      GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";      \
  } while (0)

// Skips the current test, naming what is missing, when the shared fixtures are not there.
#define CLIP_REQUIRE_SHARED_FIXTURES()                                                    \
  do {                                                                                    \
    if (clip::test::shared_fixtures().empty())                                            \
      GTEST_SKIP() << "shared fixtures not found (set CLIP_FIXTURES or place ../shared)"; \
  } while (0)
