// open_clip's preprocess_cfg: how a model wants its images prepared (size, mean, std,
// interpolation, resize mode, fill colour). Plain data, torch- and codec-free: the hub reads it
// from open_clip_config.json and the table, a ModelConfig carries it, and the image pipeline
// applies it (clip::Model::image_preprocess).
#pragma once

#include <array>
#include <string>

namespace clip {

struct PreprocessConfig {
  int size = 0;  // 0: the model's image_resolution (the only size a model takes)
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
  std::string interpolation = "bicubic";  // bicubic | bilinear
  std::string resize_mode = "shortest";   // shortest | longest | squash
  int fill_color = 0;                     // 0..255, the padding of resize_mode longest

  bool operator==(const PreprocessConfig& o) const {
    return size == o.size && mean == o.mean && std == o.std && interpolation == o.interpolation &&
           resize_mode == o.resize_mode && fill_color == o.fill_color;
  }
  bool operator!=(const PreprocessConfig& o) const { return !(*this == o); }
};

// Reads a preprocess_cfg JSON object (its text) over `base`: the keys present replace base's.
// `size` may be an int or a square [h, w]; `mean`/`std` 3 numbers (or one for all channels).
// Throws clip::Error naming `where`: kInvalidInput for malformed values, kUnsupported for an
// interpolation other than bicubic/bilinear, a resize_mode other than shortest/longest/squash,
// or a non-square size.
PreprocessConfig preprocess_config_from_json(const std::string& json_text, PreprocessConfig base,
                                             const std::string& where);
// The JSON object open_clip writes (size omitted when 0).
std::string preprocess_config_to_json(const PreprocessConfig& p);
// Throws clip::Error naming `where` unless every field is in range (sizes 0..8192, std > 0 and
// finite, mean finite, fill 0..255, known interpolation and resize mode).
void validate_preprocess_config(const PreprocessConfig& p, const std::string& where);

}  // namespace clip
