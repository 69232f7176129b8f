// PNG through libpng, giving what Pillow 9.4's PngImagePlugin gives (its _MODES table):
//   grey 1 → "1"; grey 2/4 → L (scaled ×85 / ×17); grey 8 → L; grey 16 → I;
//   RGB 8 → RGB; RGB 16 → RGB (high bytes); palette 1..8 → P; grey+alpha 8 → LA;
//   grey+alpha 16 → RGBA (L, L, L, A high bytes); RGBA 8/16 → RGBA (high bytes).
// tRNS never changes the mode (Pillow keeps it as info only); gamma and colour chunks are ignored.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <png.h>

#include "image/decoders.h"

namespace clip::image::detail {
namespace {

struct PngContext {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  bool ran_out = false;
  char message[256] = {0};
  png_structp png = nullptr;
  png_infop info = nullptr;
  // results
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0, passes = 1;
  int rows_done = 0;  // rows of the last pass read (for truncated files)
  int orientation = 0;
  int palette_n = 0;
  uint8_t palette[256 * 3] = {0};
  std::vector<uint8_t> raw;  // libpng's rows (after packing), rowbytes each
  size_t rowbytes = 0;
  std::vector<png_bytep> rows;

  ~PngContext() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* c = static_cast<PngContext*>(png_get_io_ptr(png));
  if (n > c->size - c->pos) {
    c->ran_out = true;
    png_error(png, "the data ends early");
  }
  std::memcpy(out, c->data + c->pos, n);
  c->pos += n;
}

void on_error(png_structp png, png_const_charp msg) {
  auto* c = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(c->message, sizeof c->message, "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

// Phase 1: header. Returns false after a libpng error (message in c->message).
bool read_header(PngContext* c, bool want_exif) {
  if (setjmp(png_jmpbuf(c->png))) return false;
  png_set_read_fn(c->png, c, on_read);
  png_set_user_limits(c->png, 0x7fffffff, 0x7fffffff);  // our pixel limit applies instead
  png_set_check_for_invalid_index(c->png, 0);           // Pillow maps such indices to grey
  png_read_info(c->png, c->info);
  png_uint_32 w, h;
  int bd, ct, il;
  png_get_IHDR(c->png, c->info, &w, &h, &bd, &ct, &il, nullptr, nullptr);
  c->width = w;
  c->height = h;
  c->bit_depth = bd;
  c->color_type = ct;
  c->interlace = il;
  if (ct == PNG_COLOR_TYPE_PALETTE) {
    png_colorp pal = nullptr;
    int n = 0;
    if (png_get_PLTE(c->png, c->info, &pal, &n) && pal) {
      c->palette_n = n > 256 ? 256 : n;
      for (int i = 0; i < c->palette_n; ++i) {
        c->palette[i * 3] = pal[i].red;
        c->palette[i * 3 + 1] = pal[i].green;
        c->palette[i * 3 + 2] = pal[i].blue;
      }
    }
  }
#ifdef PNG_eXIf_SUPPORTED
  if (want_exif) {
    png_bytep exif = nullptr;
    png_uint_32 n = 0;
    if (png_get_eXIf_1(c->png, c->info, &n, &exif) && exif) c->orientation = exif_orientation(exif, n);
  }
#else
  (void)want_exif;
#endif
  if (bd < 8) png_set_packing(c->png);  // one byte per sample, values 0 .. 2^bd − 1
  c->passes = png_set_interlace_handling(c->png);
  png_read_update_info(c->png, c->info);
  c->rowbytes = png_get_rowbytes(c->png, c->info);
  return true;
}

// Phase 2: pixels, pass by pass. Returns false after a libpng error.
bool read_pixels(PngContext* c) {
  if (setjmp(png_jmpbuf(c->png))) return false;
  for (int pass = 0; pass < c->passes; ++pass) {
    c->rows_done = 0;
    for (uint32_t y = 0; y < c->height; ++y) {
      png_read_row(c->png, c->rows[y], nullptr);
      c->rows_done = static_cast<int>(y) + 1;
    }
  }
  return true;
}

}  // namespace

Image decode_png(std::string_view bytes, const std::string& name, const DecodeOptions& options) {
  auto c = std::make_unique<PngContext>();
  c->data = reinterpret_cast<const uint8_t*>(bytes.data());
  c->size = bytes.size();
  c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c.get(), on_error, on_warning);
  if (!c->png) fail(name, "PNG: out of memory");
  c->info = png_create_info_struct(c->png);
  if (!c->info) fail(name, "PNG: out of memory");
  if (!read_header(c.get(), options.exif_transpose)) {
    if (c->ran_out) fail(name, "truncated PNG: the data ends inside the headers");
    fail(name, std::string("corrupt PNG: ") + c->message);
  }
  check_dimensions(name, "PNG", c->width, c->height, options);
  const int bd = c->bit_depth, ct = c->color_type;
  Mode mode;
  switch (ct) {
    case PNG_COLOR_TYPE_GRAY: mode = bd == 1 ? Mode::k1 : bd == 16 ? Mode::kI : Mode::kL; break;
    case PNG_COLOR_TYPE_RGB: mode = Mode::kRGB; break;
    case PNG_COLOR_TYPE_PALETTE: mode = Mode::kP; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: mode = bd == 16 ? Mode::kRGBA : Mode::kLA; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: mode = Mode::kRGBA; break;
    default: fail(name, "PNG colour type " + std::to_string(ct) + " is not supported");
  }
  const int samples = ct == PNG_COLOR_TYPE_RGB          ? 3
                      : ct == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                      : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                        : 1;
  const size_t expect = static_cast<size_t>(c->width) * samples * (bd == 16 ? 2 : 1);
  if (c->rowbytes != expect) fail(name, "PNG: unexpected row size from libpng");
  c->raw.assign(c->rowbytes * c->height, 0);
  c->rows.resize(c->height);
  for (uint32_t y = 0; y < c->height; ++y) c->rows[y] = c->raw.data() + y * c->rowbytes;
  if (!read_pixels(c.get())) {
    if (!c->ran_out) fail(name, std::string("corrupt PNG: ") + c->message);
    if (!options.allow_truncated)
      fail(name, "truncated PNG: the image data ends early (" + std::to_string(c->rows_done) + " of " +
                     std::to_string(c->height) + " rows" + (c->passes > 1 ? " in the last pass" : "") +
                     "); expected a complete image (allow_truncated / --allow-truncated accepts it)");
  }

  Image img = new_image(mode, static_cast<int>(c->width), static_cast<int>(c->height), Format::kPng);
  img.exif_orientation = c->orientation;
  const size_t n = static_cast<size_t>(c->width) * c->height;
  const uint8_t* r = c->raw.data();
  uint8_t* d = img.pixels.data();
  if (mode == Mode::kP) {
    std::memcpy(d, r, n);
    img.palette = make_palette(c->palette, c->palette_n, 3, false);
  } else if (mode == Mode::k1) {
    for (size_t i = 0; i < n; ++i) d[i] = r[i] ? 255 : 0;
  } else if (mode == Mode::kI) {
    for (size_t i = 0; i < n; ++i) {
      const int32_t v = (r[2 * i] << 8) | r[2 * i + 1];
      std::memcpy(d + 4 * i, &v, 4);
    }
  } else if (bd == 16 && ct == PNG_COLOR_TYPE_GRAY_ALPHA) {
    for (size_t i = 0; i < n; ++i) {
      d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = r[4 * i];
      d[4 * i + 3] = r[4 * i + 2];
    }
  } else if (bd == 16) {
    const size_t m = n * samples;
    for (size_t i = 0; i < m; ++i) d[i] = r[2 * i];
  } else if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) {
    const int scale = bd == 2 ? 85 : 17;
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(r[i] * scale);
  } else {
    std::memcpy(d, r, n * samples);
  }
  return img;
}

}  // namespace clip::image::detail
