// GIF (first frame) through giflib, giving what Pillow 9.4's GifImagePlugin gives for frame 0:
// mode P with the frame's palette (local, else global), or L when there is no palette or the
// palette is the identity grey ramp (entry i = (i, i, i)); the canvas is the logical screen
// (grown to hold the frame), filled with the frame's transparent index (or 0) outside the frame.
#include <algorithm>
#include <cstring>
#include <vector>

#include <gif_lib.h>

#include "image/decoders.h"

namespace clip::image::detail {
namespace {

struct Source {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

int on_read(GifFileType* gif, GifByteType* out, int n) {
  auto* s = static_cast<Source*>(gif->UserData);
  if (n <= 0) return 0;
  const size_t k = std::min(static_cast<size_t>(n), s->size - s->pos);
  std::memcpy(out, s->data + s->pos, k);
  s->pos += k;
  return static_cast<int>(k);
}

struct GifCloser {
  GifFileType* gif = nullptr;
  ~GifCloser() {
    if (gif) {
      int err = 0;
      DGifCloseFile(gif, &err);
    }
  }
};

std::string gif_error(int code) {
  const char* s = GifErrorString(code);
  return s ? s : ("giflib error " + std::to_string(code));
}

// Pillow's _is_palette_needed: false when every entry i is (i, i, i).
bool palette_needed(const ColorMapObject* m) {
  for (int i = 0; i < m->ColorCount; ++i) {
    const GifColorType& c = m->Colors[i];
    if (!(c.Red == i && c.Green == i && c.Blue == i)) return true;
  }
  return false;
}

}  // namespace

Image decode_gif(std::string_view bytes, const std::string& name, const DecodeOptions& options) {
  Source src{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 0};
  int err = 0;
  GifCloser closer;
  closer.gif = DGifOpen(&src, on_read, &err);
  if (!closer.gif) fail(name, "corrupt GIF: " + gif_error(err));
  GifFileType* gif = closer.gif;
  auto gif_fail = [&](const char* what) {
    const bool ran_out = src.pos >= src.size;
    fail(name, std::string(ran_out ? "truncated GIF: the data ends early" : "corrupt GIF") + " (" + what + ": " +
                   gif_error(gif->Error) + ")");
  };

  int transparency = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) gif_fail("reading a block");
    if (type == TERMINATE_RECORD_TYPE) fail(name, "GIF has no image (no frame before the trailer)");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) gif_fail("reading an extension");
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) {
        transparency = (ext[1] & 1) ? ext[4] : -1;
      }
      while (ext) {
        if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) gif_fail("reading an extension");
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif) == GIF_ERROR) gif_fail("reading the image descriptor");
    const GifImageDesc& d = gif->Image;
    const int64_t x0 = d.Left, y0 = d.Top, fw = d.Width, fh = d.Height;
    const int64_t w = std::max<int64_t>(gif->SWidth, x0 + fw), h = std::max<int64_t>(gif->SHeight, y0 + fh);
    check_dimensions(name, "GIF", w, h, options);
    // The frame's palette: local (None when it is the grey ramp), else global.
    const ColorMapObject* pal = nullptr;
    bool have = false;
    if (d.ColorMap) {
      pal = palette_needed(d.ColorMap) ? d.ColorMap : nullptr;
      have = true;
    }
    if (!have && gif->SColorMap && palette_needed(gif->SColorMap)) pal = gif->SColorMap;
    Image img = new_image(pal ? Mode::kP : Mode::kL, static_cast<int>(w), static_cast<int>(h), Format::kGif);
    if (transparency >= 0) std::fill(img.pixels.begin(), img.pixels.end(), static_cast<uint8_t>(transparency));
    if (pal) {
      std::vector<uint8_t> rgb(static_cast<size_t>(pal->ColorCount) * 3);
      for (int i = 0; i < pal->ColorCount; ++i) {
        rgb[3 * i] = pal->Colors[i].Red;
        rgb[3 * i + 1] = pal->Colors[i].Green;
        rgb[3 * i + 2] = pal->Colors[i].Blue;
      }
      img.palette = make_palette(rgb.data(), std::min(pal->ColorCount, 256), 3, false);
    }
    if (fw > 0 && fh > 0) {
      std::vector<GifPixelType> line(static_cast<size_t>(fw));
      // Interlaced rows arrive in four passes.
      std::vector<int> order;
      order.reserve(static_cast<size_t>(fh));
      if (d.Interlace) {
        const int starts[4] = {0, 4, 2, 1}, steps[4] = {8, 8, 4, 2};
        for (int p = 0; p < 4; ++p)
          for (int64_t y = starts[p]; y < fh; y += steps[p]) order.push_back(static_cast<int>(y));
      } else {
        for (int64_t y = 0; y < fh; ++y) order.push_back(static_cast<int>(y));
      }
      for (int y : order) {
        if (DGifGetLine(gif, line.data(), static_cast<int>(fw)) == GIF_ERROR) gif_fail("decoding the pixels");
        std::memcpy(img.pixels.data() + static_cast<size_t>(y0 + y) * w + x0, line.data(), static_cast<size_t>(fw));
      }
    }
    return img;
  }
}

}  // namespace clip::image::detail
