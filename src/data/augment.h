// Training-time image augmentation, as open_clip's training transform: RandomResizedCrop
// (torchvision's sampling: 10 tries at a random area fraction and log-uniform aspect ratio, then a
// centre crop) with a bicubic resize (Pillow's), then convert("RGB").
#pragma once

#include <cstdint>
#include <random>

#include "clip/image.h"

namespace clip::data {

struct AugmentOptions {
  bool enabled = false;
  double scale_min = 0.9, scale_max = 1.0;  // open_clip's default area fraction
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
};

struct CropBox {
  int left = 0, top = 0, width = 0, height = 0;
};

// torchvision's RandomResizedCrop.get_params on a width × height image.
CropBox random_resized_crop_box(int width, int height, const AugmentOptions& options, std::mt19937_64& rng);

// The crop resized to size × size and converted to RGB.
image::Rgb8 random_resized_crop(const image::Image& img, int size, const AugmentOptions& options, std::mt19937_64& rng);

}  // namespace clip::data
