// PNG output of an RGB image (for inspecting crops), through libpng.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <png.h>

#include "clip/error.h"
#include "clip/image.h"
#include "util/file_io.h"

namespace clip::image {
namespace {

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string out;
  char message[256] = {0};
  std::vector<png_bytep> rows;
  ~PngWriter() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

void on_write(png_structp png, png_bytep data, png_size_t n) {
  static_cast<PngWriter*>(png_get_io_ptr(png))->out.append(reinterpret_cast<const char*>(data), n);
}
void on_flush(png_structp) {}
void on_error(png_structp png, png_const_charp msg) {
  auto* w = static_cast<PngWriter*>(png_get_error_ptr(png));
  std::snprintf(w->message, sizeof w->message, "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

bool write_all(PngWriter* w, const Rgb8* rgb) {
  if (setjmp(png_jmpbuf(w->png))) return false;
  png_set_write_fn(w->png, w, on_write, on_flush);
  png_set_IHDR(w->png, w->info, static_cast<png_uint_32>(rgb->width), static_cast<png_uint_32>(rgb->height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w->png, w->info);
  png_write_image(w->png, w->rows.data());
  png_write_end(w->png, nullptr);
  return true;
}

}  // namespace

std::string encode_png(const Rgb8& rgb) {
  if (rgb.width <= 0 || rgb.height <= 0 || rgb.pixels.size() != static_cast<size_t>(rgb.width) * rgb.height * 3)
    throw Error("encode_png: the RGB image is empty or its buffer does not match its size");
  auto w = std::make_unique<PngWriter>();
  w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, w.get(), on_error, on_warning);
  if (!w->png) throw Error("encode_png: out of memory");
  w->info = png_create_info_struct(w->png);
  if (!w->info) throw Error("encode_png: out of memory");
  w->rows.resize(static_cast<size_t>(rgb.height));
  for (int y = 0; y < rgb.height; ++y)
    w->rows[y] = const_cast<png_bytep>(rgb.pixels.data() + static_cast<size_t>(y) * rgb.width * 3);
  if (!write_all(w.get(), &rgb)) throw Error(std::string("encode_png: ") + w->message);
  return std::move(w->out);
}

void write_png(const std::string& path, const Rgb8& rgb) { util::write_file_atomic(path, encode_png(rgb)); }

}  // namespace clip::image
