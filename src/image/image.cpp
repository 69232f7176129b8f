// Formats, modes, decoding dispatch and the mode conversions (Pillow's convert("RGB")).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "clip/error.h"
#include "image/decoders.h"
#include "image/resample.h"
#include "util/file_io.h"

namespace clip::image {

const char* format_name(Format f) {
  switch (f) {
    case Format::kJpeg: return "JPEG";
    case Format::kPng: return "PNG";
    case Format::kWebp: return "WebP";
    case Format::kBmp: return "BMP";
    case Format::kGif: return "GIF";
    case Format::kUnknown: break;
  }
  return "unknown";
}

Format detect_format(std::string_view b) {
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return Format::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return Format::kPng;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::kGif;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8) &&
      (starts("VP8 ", 4, 12) || starts("VP8L", 4, 12) || starts("VP8X", 4, 12)))
    return Format::kWebp;
  if (starts("BM", 2)) return Format::kBmp;
  return Format::kUnknown;
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::k1: return "1";
    case Mode::kL: return "L";
    case Mode::kLA: return "LA";
    case Mode::kP: return "P";
    case Mode::kRGB: return "RGB";
    case Mode::kRGBA: return "RGBA";
    case Mode::kCMYK: return "CMYK";
    case Mode::kI: return "I";
  }
  return "?";
}

int bytes_per_pixel(Mode m) {
  switch (m) {
    case Mode::k1:
    case Mode::kL:
    case Mode::kP: return 1;
    case Mode::kLA: return 2;
    case Mode::kRGB: return 3;
    case Mode::kRGBA:
    case Mode::kCMYK:
    case Mode::kI: return 4;
  }
  return 1;
}

namespace detail {

void fail(const std::string& name, const std::string& what, ErrorKind kind) { throw Error(name + ": " + what, kind); }

void check_dimensions(const std::string& name, const char* format, int64_t width, int64_t height,
                      const DecodeOptions& options) {
  if (options.max_pixels <= 0) fail(name, "the pixel limit must be positive");
  if (width <= 0 || height <= 0)
    fail(name, std::string(format) + " has an empty size " + std::to_string(width) + "x" + std::to_string(height));
  // A side over 2^30 is refused before the product is formed: it could overflow int64.
  const bool side_too_long = width > (1 << 30) || height > (1 << 30);
  if (side_too_long || width * height > options.max_pixels)
    fail(name,
         std::string(format) + " is " + std::to_string(width) + "x" + std::to_string(height) +
             (side_too_long ? std::string() : " = " + std::to_string(width * height) + " pixels") +
             ", over the limit of " + std::to_string(options.max_pixels) +
             " pixels (a decompression bomb?); raise it with max_pixels / --max-pixels",
         ErrorKind::kTooLarge);
}

Image new_image(Mode mode, int width, int height, Format format) {
  Image img;
  img.mode = mode;
  img.width = width;
  img.height = height;
  img.format = format;
  img.pixels.assign(static_cast<size_t>(width) * height * bytes_per_pixel(mode), 0);
  return img;
}

std::vector<uint8_t> make_palette(const uint8_t* entries, int n, int stride, bool bgr) {
  std::vector<uint8_t> pal(768);
  for (int i = 0; i < 256; ++i) pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = static_cast<uint8_t>(i);
  n = std::min(n, 256);
  for (int i = 0; i < n; ++i) {
    const uint8_t* e = entries + static_cast<size_t>(i) * stride;
    pal[3 * i] = bgr ? e[2] : e[0];
    pal[3 * i + 1] = e[1];
    pal[3 * i + 2] = bgr ? e[0] : e[2];
  }
  return pal;
}

int exif_orientation(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return 0;
  bool le;
  if (data[0] == 'I' && data[1] == 'I') le = true;
  else if (data[0] == 'M' && data[1] == 'M') le = false;
  else return 0;
  auto rd16 = [&](size_t at) -> uint32_t {
    return le ? data[at] | (data[at + 1] << 8) : (data[at] << 8) | data[at + 1];
  };
  auto rd32 = [&](size_t at) -> uint32_t {
    return le ? rd16(at) | (rd16(at + 2) << 16) : (rd16(at) << 16) | rd16(at + 2);
  };
  if (rd16(2) != 42) return 0;
  const size_t ifd = rd32(4);
  if (ifd > size - 2) return 0;
  const size_t count = rd16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > size) break;
    if (rd16(e) == 0x0112) {
      const uint32_t type = rd16(e + 2);
      const uint32_t v = type == 3 ? rd16(e + 8) : type == 4 ? rd32(e + 8) : 0;
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 0;
    }
  }
  return 0;
}

}  // namespace detail

Image decode(std::string_view bytes, const std::string& name, const DecodeOptions& options) {
  if (bytes.empty()) detail::fail(name, "empty file (0 bytes); expected an image");
  Image img;
  switch (detect_format(bytes)) {
    case Format::kJpeg: img = detail::decode_jpeg(bytes, name, options); break;
    case Format::kPng: img = detail::decode_png(bytes, name, options); break;
    case Format::kWebp: img = detail::decode_webp(bytes, name, options); break;
    case Format::kBmp: img = detail::decode_bmp(bytes, name, options); break;
    case Format::kGif: img = detail::decode_gif(bytes, name, options); break;
    case Format::kUnknown: {
      char hex[40] = {0};
      const size_t n = std::min<size_t>(8, bytes.size());
      for (size_t i = 0; i < n; ++i) std::snprintf(hex + 3 * i, 4, "%02x ", static_cast<unsigned char>(bytes[i]));
      detail::fail(name,
                   "cannot identify the image format: the file starts with " + std::string(hex, 3 * n - 1) +
                       "; expected JPEG, PNG, WebP, BMP or GIF data",
                   ErrorKind::kUnsupported);
    }
  }
  if (options.exif_transpose && img.exif_orientation >= 2) img = apply_orientation(img, img.exif_orientation);
  return img;
}

Image decode_file(const std::string& path, const DecodeOptions& options) {
  return decode(util::read_file(path), path, options);
}

Rgb8 to_rgb(const Image& img) {
  Rgb8 out;
  detail::to_rgb_into(img, out);
  return out;
}

void detail::to_rgb_into(const Image& img, Rgb8& out) {
  out.width = img.width;
  out.height = img.height;
  const size_t n = static_cast<size_t>(img.width) * img.height;
  out.pixels.resize(n * 3);
  const uint8_t* s = img.pixels.data();
  uint8_t* d = out.pixels.data();
  switch (img.mode) {
    case Mode::k1:
      for (size_t i = 0; i < n; ++i) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i] ? 255 : 0;
      break;
    case Mode::kL:
      for (size_t i = 0; i < n; ++i) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i];
      break;
    case Mode::kLA:
      for (size_t i = 0; i < n; ++i) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[2 * i];
      break;
    case Mode::kP: {
      if (img.palette.size() != 768) throw Error("image: a P-mode image needs a 768-byte palette");
      const uint8_t* p = img.palette.data();
      for (size_t i = 0; i < n; ++i) std::memcpy(d + 3 * i, p + 3 * s[i], 3);
      break;
    }
    case Mode::kRGB: std::memcpy(d, s, n * 3); break;
    case Mode::kRGBA:
      for (size_t i = 0; i < n; ++i) std::memcpy(d + 3 * i, s + 4 * i, 3);
      break;
    case Mode::kCMYK:
      // Pillow's cmyk2rgb: R = 255 − K − round(C·(255 − K)/255), same for G (M) and B (Y).
      for (size_t i = 0; i < n; ++i) {
        const unsigned nk = 255u - s[4 * i + 3];
        for (int c = 0; c < 3; ++c) {
          const unsigned t = s[4 * i + c] * nk + 128;
          const int v = static_cast<int>(nk) - static_cast<int>(((t >> 8) + t) >> 8);
          d[3 * i + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
        }
      }
      break;
    case Mode::kI:
      for (size_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, s + 4 * i, 4);
        d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = static_cast<uint8_t>(v <= 0 ? 0 : v < 256 ? v : 255);
      }
      break;
  }
}

Image crop(const Image& img, int left, int top, int width, int height) {
  if (left < 0 || top < 0 || width <= 0 || height <= 0 || left + width > img.width || top + height > img.height)
    throw Error("image crop: the box (" + std::to_string(left) + ", " + std::to_string(top) + ", " +
                std::to_string(width) + "x" + std::to_string(height) + ") is outside the " + std::to_string(img.width) +
                "x" + std::to_string(img.height) + " image");
  Image out;
  out.mode = img.mode;
  out.width = width;
  out.height = height;
  out.format = img.format;
  out.palette = img.palette;
  out.exif_orientation = img.exif_orientation;
  const int bpp = bytes_per_pixel(img.mode);
  const size_t rb = static_cast<size_t>(width) * bpp;
  out.pixels.resize(rb * height);
  for (int y = 0; y < height; ++y)
    std::memcpy(out.pixels.data() + y * rb, img.pixels.data() + (static_cast<size_t>(top + y) * img.width + left) * bpp,
                rb);
  return out;
}

Image resize(const Image& img, int width, int height, Filter filter) {
  return detail::resize_region(img, width, height, 0, 0, width, height, detail::Kernel::kAuto, filter);
}

Image apply_orientation(const Image& img, int orientation) {
  if (orientation < 2 || orientation > 8) return img;
  const int W = img.width, H = img.height;
  const bool swap = orientation >= 5;
  Image out = img;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.exif_orientation = 1;
  const int bpp = bytes_per_pixel(img.mode);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = W - 1 - x; break;  // FLIP_LEFT_RIGHT
        case 3:
          sx = W - 1 - x;
          sy = H - 1 - y;
          break;                        // ROTATE_180
        case 4: sy = H - 1 - y; break;  // FLIP_TOP_BOTTOM
        case 5:
          sx = y;
          sy = x;
          break;  // TRANSPOSE
        case 6:
          sx = y;
          sy = H - 1 - x;
          break;  // ROTATE_270
        case 7:
          sx = W - 1 - y;
          sy = H - 1 - x;
          break;  // TRANSVERSE
        case 8:
          sx = W - 1 - y;
          sy = x;
          break;  // ROTATE_90
      }
      std::memcpy(out.pixels.data() + (static_cast<size_t>(y) * out.width + x) * bpp,
                  img.pixels.data() + (static_cast<size_t>(sy) * W + sx) * bpp, bpp);
    }
  }
  return out;
}

}  // namespace clip::image
