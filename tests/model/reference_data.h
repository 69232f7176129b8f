// The fixtures' reference outputs for the model tests: where they are and how they load.
#pragma once

#include <torch/torch.h>

#include <string>

#include "clip/error.h"
#include "test_paths.h"
#include "util/npy.h"

namespace clip::test {

// ../shared/fixtures when present, else the partial mirror in tests/data/fixtures (tiny-vit-f16).
inline std::string fixtures() {
  const std::string shared = shared_fixtures();
  return shared.empty() ? data_dir() + "/fixtures" : shared;
}

// A reference .npy array (float32, int32 or int64) as a tensor that owns its data.
inline torch::Tensor load_npy(const std::string& path) {
  util::NpyArray a = util::read_npy(path);
  torch::ScalarType t;
  if (a.dtype == "<f4") t = torch::kFloat32;
  else if (a.dtype == "<i4") t = torch::kInt32;
  else if (a.dtype == "<i8") t = torch::kInt64;
  else throw Error(path + ": unexpected dtype " + a.dtype);
  return torch::from_blob(a.data.data(), a.shape, t).clone();
}

}  // namespace clip::test
