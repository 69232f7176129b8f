// The tiny ViT fixture model and the test image files, shared by the tests that embed images
// (index, serve). Needs clip_model.
#pragma once

#include <string>

#include "clip/model.h"
#include "test_paths.h"

namespace clip::test {

inline std::string model_path() { return data_dir() + "/fixtures/models/tiny-vit-f16.safetensors"; }
inline std::string image_file(const std::string& name) { return data_dir() + "/images/files/" + name; }

// Loaded once per test binary.
inline const clip::Model& tiny_model() {
  static const clip::Model model = clip::Model::load(model_path());
  return model;
}

}  // namespace clip::test
