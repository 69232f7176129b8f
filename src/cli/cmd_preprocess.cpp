// `clip preprocess`: the model input of image files (CLIP's exact preprocessing), as .npy, and
// optionally the cropped RGB images as PNG for inspection.
#include <array>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include "cli/commands.h"
#include "clip/error.h"
#include "clip/image.h"
#include "util/npy.h"

namespace clip::cli {
namespace {

struct PreprocessCliOptions {
  std::vector<std::string> files;
  int size = 224;
  std::string out, png;
  std::string mean, std;  // "r,g,b"
  int threads = 0;
  int64_t max_pixels = image::kDefaultMaxPixels;
  bool allow_truncated = false, exif_transpose = false, fast_jpeg = false, skip_errors = false, quiet = false;
};

// crop.png → crop_3.png when several files are given.
std::string numbered(const std::string& path, size_t i, size_t n) {
  if (n == 1) return path;
  const size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) dot = path.size();
  return path.substr(0, dot) + "_" + std::to_string(i) + path.substr(dot);
}

// "0.5,0.5,0.5" → three floats; anything else is a usage error.
std::array<float, 3> three_floats(const std::string& s, const char* flag) {
  std::array<float, 3> v{};
  size_t at = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t end = i < 2 ? s.find(',', at) : s.size();
    if (end == std::string::npos)
      throw CLI::ValidationError(flag, "expected three comma-separated numbers, found \"" + s + "\"");
    try {
      size_t used = 0;
      v[i] = std::stof(s.substr(at, end - at), &used);
      if (used != end - at) throw std::invalid_argument(s);
    } catch (const std::exception&) {
      throw CLI::ValidationError(flag, "expected three comma-separated numbers, found \"" + s + "\"");
    }
    at = end + 1;
  }
  return v;
}

void run_preprocess(const PreprocessCliOptions& o) {
  image::PreprocessOptions p;
  p.size = o.size;
  if (!o.mean.empty()) p.mean = three_floats(o.mean, "--mean");
  if (!o.std.empty()) p.std = three_floats(o.std, "--std");
  p.decode.max_pixels = o.max_pixels;
  p.decode.allow_truncated = o.allow_truncated;
  p.decode.exif_transpose = o.exif_transpose;
  p.fast_jpeg = o.fast_jpeg;
  const std::vector<image::BatchItem> items = image::preprocess_files(o.files, p, o.threads, !o.png.empty());

  size_t failed = 0;
  std::optional<ErrorKind> failure_kind;  // the kind all failures share, else kInvalidInput
  for (const auto& it : items) {
    if (it.ok()) continue;
    ++failed;
    failure_kind = !failure_kind || *failure_kind == it.error_kind ? it.error_kind : ErrorKind::kInvalidInput;
    std::fprintf(stderr, "%s: %s\n", o.skip_errors ? "skipped" : "error", it.error.c_str());
  }
  if (failed && !o.skip_errors)
    throw Error(std::to_string(failed) + " of " + std::to_string(items.size()) +
                    " files failed (nothing written; --skip-errors writes the others)",
                *failure_kind);

  std::vector<float> batch;
  size_t rows = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    if (!it.ok()) continue;
    const image::SourceInfo& s = it.result.source;
    const image::Geometry& g = s.geometry;
    if (!o.quiet) {
      std::printf("%s: %s %s %dx%d -> resized %dx%d, crop at (%d, %d), %dx%d", it.path.c_str(),
                  image::format_name(s.format), image::mode_name(s.mode), s.width, s.height, g.resized_width,
                  g.resized_height, g.crop_left, g.crop_top, o.size, o.size);
      if (s.jpeg_scale != 8) std::printf(" (JPEG decoded at %d/8)", s.jpeg_scale);
      std::printf("\n");
    }
    batch.insert(batch.end(), it.result.input.begin(), it.result.input.end());
    ++rows;
    if (!o.png.empty()) image::write_png(numbered(o.png, i, items.size()), it.result.rgb);
  }
  if (!o.out.empty()) {
    util::write_npy(o.out, "<f4", {static_cast<int64_t>(rows), 3, o.size, o.size}, batch.data(),
                    batch.size() * sizeof(float));
    if (!o.quiet) std::fprintf(stderr, "wrote float32 [%zu, 3, %d, %d] to %s\n", rows, o.size, o.size, o.out.c_str());
  }
}

}  // namespace

void register_preprocess(CLI::App& app) {
  auto o = std::make_shared<PreprocessCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "preprocess", "CLIP's image preprocessing (Pillow-exact): resize, centre crop, normalize; write the model input");
  cmd->add_option("files", o->files, "Image files (JPEG, PNG, WebP, BMP, GIF; the format is read from the bytes)")
      ->required();
  cmd->add_option("--size", o->size, "Model input resolution (short side, then centre crop)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--out", o->out, "Write the model input: .npy float32 [N, 3, size, size], rows in file order");
  cmd->add_option("--png", o->png, "Write the cropped RGB image as PNG (several files: NAME_<i>.png)");
  cmd->add_option("--mean", o->mean, "Per-channel mean R,G,B (default CLIP's 0.48145466,0.4578275,0.40821073)");
  cmd->add_option("--std", o->std, "Per-channel std R,G,B (default CLIP's 0.26862954,0.26130258,0.27577711)");
  cmd->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--max-pixels", o->max_pixels, "Refuse images with more pixels (decompression bombs)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_flag("--allow-truncated", o->allow_truncated, "Accept files whose data ends early (missing rows grey/zero)");
  cmd->add_flag("--exif-transpose", o->exif_transpose, "Apply the EXIF orientation (the reference ignores it)");
  cmd->add_flag("--fast-jpeg", o->fast_jpeg,
                "Decode large JPEGs at a reduced DCT scale (short side still >= 2x size); not Pillow-exact");
  cmd->add_flag("--skip-errors", o->skip_errors, "Report failing files and write the others");
  cmd->add_flag("-q,--quiet", o->quiet, "Print nothing but errors");
  cmd->callback([o] { run_preprocess(*o); });
}

}  // namespace clip::cli
