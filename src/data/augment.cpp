#include "data/augment.h"

#include <algorithm>
#include <cmath>

namespace clip::data {

CropBox random_resized_crop_box(int width, int height, const AugmentOptions& o, std::mt19937_64& rng) {
  const double area = static_cast<double>(width) * height;
  std::uniform_real_distribution<double> scale(o.scale_min, o.scale_max);
  std::uniform_real_distribution<double> log_ratio(std::log(o.ratio_min), std::log(o.ratio_max));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * scale(rng);
    const double ratio = std::exp(log_ratio(rng));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = std::uniform_int_distribution<int>(0, height - h)(rng);
      const int left = std::uniform_int_distribution<int>(0, width - w)(rng);
      return {left, top, w, h};
    }
  }
  // No try fitted: the largest centred crop within the ratio range.
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < o.ratio_min) h = static_cast<int>(std::lround(w / o.ratio_min));
  else if (in_ratio > o.ratio_max) w = static_cast<int>(std::lround(h * o.ratio_max));
  return {(width - w) / 2, (height - h) / 2, w, h};
}

image::Rgb8 random_resized_crop(const image::Image& img, int size, const AugmentOptions& o, std::mt19937_64& rng) {
  const CropBox box = random_resized_crop_box(img.width, img.height, o, rng);
  const image::Image cropped = image::crop(img, box.left, box.top, box.width, box.height);
  return image::to_rgb(image::resize(cropped, size, size));
}

}  // namespace clip::data
