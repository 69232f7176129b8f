// Where tests find their data: tests/data (shipped with the repo) and ../shared/fixtures
// (optional; CLIP_FIXTURES overrides it). Tests that need the shared fixtures skip by name.
#pragma once

#include <cstdlib>
#include <string>
#include <sys/stat.h>

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

}  // namespace clip::test

// Skips the current test, naming what is missing, when the shared fixtures are not there.
#define CLIP_REQUIRE_SHARED_FIXTURES()                                                   \
  do {                                                                                   \
    if (clip::test::shared_fixtures().empty())                                           \
      GTEST_SKIP() << "shared fixtures not found (set CLIP_FIXTURES or place ../shared)"; \
  } while (0)
