// clip_cpp._core.ImageTransform: a model's image preprocessing, Pillow-exact, from a file, from
// encoded bytes, or from a decoded image's pixels in its Pillow mode (what the Python layer takes
// out of a PIL image). Evaluation: resize + crop (or the model's resize mode) + convert("RGB") +
// normalize; training: RandomResizedCrop + convert("RGB") + normalize (src/data/augment.h). The
// float32 [3, size, size] result is written in place into the tensor Python receives.
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindings.h"
#include "clip/error.h"
#include "clip/image.h"
#include "data/augment.h"

namespace clip::python {
namespace {

struct ImageTransform {
  image::PreprocessOptions options;
  bool train = false;
  data::AugmentOptions augment;
};

image::Mode mode_from_name(const std::string& name) {
  static constexpr image::Mode kModes[] = {image::Mode::k1,   image::Mode::kL,    image::Mode::kLA,
                                           image::Mode::kP,   image::Mode::kRGB,  image::Mode::kRGBA,
                                           image::Mode::kCMYK, image::Mode::kI};
  for (image::Mode m : kModes)
    if (name == image::mode_name(m)) return m;
  throw Error("image mode \"" + name + "\": expected one of 1, L, LA, P, RGB, RGBA, CMYK, I", ErrorKind::kUnsupported);
}

ImageTransform make_transform(int size, const std::vector<float>& mean, const std::vector<float>& std,
                              const std::string& interpolation, const std::string& resize_mode, int fill, bool train,
                              std::pair<double, double> scale, std::pair<double, double> ratio) {
  ImageTransform t;
  image::PreprocessOptions& o = t.options;
  if (size < 1 || size > 8192) throw Error("image size " + std::to_string(size) + ", expected 1 to 8192");
  o.size = size;
  if (mean.size() != 3 || std.size() != 3) throw Error("mean and std need 3 values each (R, G, B)");
  for (int c = 0; c < 3; ++c) {
    if (!(std[c] > 0)) throw Error("std[" + std::to_string(c) + "] is " + std::to_string(std[c]) + ", expected > 0");
    o.mean[c] = mean[c];
    o.std[c] = std[c];
  }
  if (interpolation == "bicubic") {
    o.filter = image::Filter::kBicubic;
  } else if (interpolation == "bilinear") {
    o.filter = image::Filter::kBilinear;
  } else {
    throw Error("interpolation \"" + interpolation + "\": expected bicubic or bilinear", ErrorKind::kUnsupported);
  }
  if (resize_mode == "shortest") {
    o.resize_mode = image::ResizeMode::kShortest;
  } else if (resize_mode == "longest") {
    o.resize_mode = image::ResizeMode::kLongest;
  } else if (resize_mode == "squash") {
    o.resize_mode = image::ResizeMode::kSquash;
  } else {
    throw Error("resize_mode \"" + resize_mode + "\": expected shortest, longest or squash", ErrorKind::kUnsupported);
  }
  if (fill < 0 || fill > 255) throw Error("fill_color " + std::to_string(fill) + ", expected 0 to 255");
  o.fill = static_cast<uint8_t>(fill);
  t.train = train;
  t.augment.enabled = train;
  if (!(0 < scale.first && scale.first <= scale.second && scale.second <= 1))
    throw Error("scale (" + std::to_string(scale.first) + ", " + std::to_string(scale.second) +
                "): expected 0 < min <= max <= 1");
  if (!(0 < ratio.first && ratio.first <= ratio.second))
    throw Error("ratio (" + std::to_string(ratio.first) + ", " + std::to_string(ratio.second) + "): expected 0 < min <= max");
  t.augment.scale_min = scale.first;
  t.augment.scale_max = scale.second;
  t.augment.ratio_min = ratio.first;
  t.augment.ratio_max = ratio.second;
  return t;
}

// Training: RandomResizedCrop of the decoded image with a generator seeded per call.
at::Tensor augmented(const ImageTransform& t, const image::Image& img, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const image::Rgb8 rgb = data::random_resized_crop(img, t.options.size, t.augment, rng);
  auto values = std::make_unique<std::vector<float>>(image::normalize(rgb, t.options.mean, t.options.std));
  const int64_t n = t.options.size;
  std::vector<float>* owned = values.release();
  return torch::from_blob(
      owned->data(), {3, n, n}, [owned](void*) { delete owned; }, at::kFloat);
}

// Evaluation: one Preprocessor run writing into the result.
template <typename Run>
at::Tensor preprocessed(const ImageTransform& t, Run run) {
  const int64_t n = t.options.size;
  at::Tensor out = at::empty({3, n, n}, at::kFloat);
  image::Preprocessor p(t.options);
  run(p, out.data_ptr<float>());
  return out;
}

std::string_view bytes_view(const py::bytes& b) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(b.ptr(), &data, &size) != 0) throw py::error_already_set();
  return {data, static_cast<size_t>(size)};
}

}  // namespace

void bind_images(py::module_& m) {
  py::class_<ImageTransform>(m, "ImageTransform", "A model's image preprocessing (evaluation or training)")
      .def(py::init(&make_transform), py::arg("size"), py::arg("mean"), py::arg("std"),
           py::arg("interpolation") = "bicubic", py::arg("resize_mode") = "shortest", py::arg("fill_color") = 0,
           py::arg("train") = false, py::arg("scale") = std::pair<double, double>(0.9, 1.0),
           py::arg("ratio") = std::pair<double, double>(3.0 / 4.0, 4.0 / 3.0))
      .def_property_readonly("size", [](const ImageTransform& t) { return t.options.size; })
      .def_property_readonly("train", [](const ImageTransform& t) { return t.train; })
      .def(
          "from_file",
          [](const ImageTransform& t, const std::string& path, uint64_t seed) {
            py::gil_scoped_release release;
            if (t.train) return augmented(t, image::decode_file(path, t.options.decode), seed);
            return preprocessed(t, [&](image::Preprocessor& p, float* out) { p.run_file(path, out); });
          },
          py::arg("path"), py::arg("seed") = 0)
      .def(
          "from_bytes",
          [](const ImageTransform& t, const py::bytes& data, const std::string& name, uint64_t seed) {
            const std::string_view bytes = bytes_view(data);  // `data` keeps them alive
            py::gil_scoped_release release;
            if (t.train) return augmented(t, image::decode(bytes, name, t.options.decode), seed);
            return preprocessed(t, [&](image::Preprocessor& p, float* out) { p.run(bytes, name, out); });
          },
          py::arg("data"), py::arg("name") = "image bytes", py::arg("seed") = 0)
      .def(
          "from_pixels",
          [](const ImageTransform& t, const std::string& mode, int width, int height, const py::bytes& pixels,
             const std::optional<py::bytes>& palette, const std::string& name, uint64_t seed) {
            image::Image img;
            img.mode = mode_from_name(mode);
            img.width = width;
            img.height = height;
            const std::string_view px = bytes_view(pixels);
            const std::string_view pal = palette ? bytes_view(*palette) : std::string_view();
            py::gil_scoped_release release;
            // Checked before the copy: the pixel count against the limit, then the byte count.
            if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > t.options.decode.max_pixels)
              throw Error(name + ": image size " + std::to_string(width) + "x" + std::to_string(height) +
                              ", expected 1 to " + std::to_string(t.options.decode.max_pixels) + " pixels",
                          width > 0 && height > 0 ? ErrorKind::kTooLarge : ErrorKind::kInvalidInput);
            if (px.size() != img.row_bytes() * static_cast<size_t>(height))
              throw Error(name + ": " + std::to_string(px.size()) + " bytes of pixels, expected " +
                          std::to_string(img.row_bytes() * height) + " for " + std::to_string(width) + "x" +
                          std::to_string(height) + " in mode " + mode);
            img.pixels.assign(px.begin(), px.end());
            img.palette.assign(pal.begin(), pal.end());
            if (t.train) {
              if (img.mode == image::Mode::kP && img.palette.size() != 768)
                throw Error(name + ": a palette of " + std::to_string(img.palette.size()) + " bytes, expected 768");
              return augmented(t, img, seed);
            }
            return preprocessed(t, [&](image::Preprocessor& p, float* out) { p.run_image(img, name, out); });
          },
          py::arg("mode"), py::arg("width"), py::arg("height"), py::arg("pixels"), py::arg("palette") = py::none(),
          py::arg("name") = "PIL image", py::arg("seed") = 0);
}

}  // namespace clip::python
