// Helpers for the image tests: .npy fixtures and differences.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "clip/image.h"
#include "util/npy.h"

namespace clip::test {

inline std::vector<uint8_t> npy_u8(const util::NpyArray& a) {
  EXPECT_EQ(a.dtype, "|u1");
  return std::vector<uint8_t>(a.data.begin(), a.data.end());
}

inline std::vector<float> npy_f32(const util::NpyArray& a) {
  EXPECT_EQ(a.dtype, "<f4");
  std::vector<float> v(a.data.size() / 4);
  std::memcpy(v.data(), a.data.data(), v.size() * 4);
  return v;
}

// Largest |a − b| over two equally long byte arrays (256 when the sizes differ).
inline int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return 256;
  int m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  return m;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

inline size_t count_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

}  // namespace clip::test
