// WebP through libwebp's animation decoder, as Pillow 9.4 reads every WebP file (still or
// animated): the first frame on a transparent canvas, non-premultiplied RGBA; the mode is RGBA
// when the file declares alpha, else RGB (alpha dropped).
#include <cstring>

#include <webp/decode.h>
#include <webp/demux.h>

#include "image/decoders.h"

namespace clip::image::detail {
namespace {

const char* status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "the data ends early (truncated)";
  }
  return "unknown error";
}

struct AnimDecoder {
  WebPAnimDecoder* dec = nullptr;
  ~AnimDecoder() {
    if (dec) WebPAnimDecoderDelete(dec);
  }
};

}  // namespace

Image decode_webp(std::string_view bytes, const std::string& name, const DecodeOptions& options) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  const VP8StatusCode st = WebPGetFeatures(data, bytes.size(), &features);
  if (st != VP8_STATUS_OK) fail(name, std::string("corrupt WebP: ") + status_text(st));
  check_dimensions(name, "WebP", features.width, features.height, options);

  WebPData wd{data, bytes.size()};
  WebPAnimDecoderOptions dopts;
  if (!WebPAnimDecoderOptionsInit(&dopts)) fail(name, "WebP: library version mismatch");
  dopts.color_mode = MODE_RGBA;
  dopts.use_threads = 0;
  AnimDecoder ad;
  ad.dec = WebPAnimDecoderNew(&wd, &dopts);
  if (!ad.dec) fail(name, "corrupt or truncated WebP: the container cannot be parsed");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(ad.dec, &info)) fail(name, "corrupt WebP: no image information");
  // The canvas was checked through WebPGetFeatures (VP8X canvas or the bitstream size).
  if (static_cast<int>(info.canvas_width) != features.width || static_cast<int>(info.canvas_height) != features.height)
    check_dimensions(name, "WebP", info.canvas_width, info.canvas_height, options);
  uint8_t* frame = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(ad.dec, &frame, &timestamp) || !frame)
    fail(name, "corrupt or truncated WebP: the first frame cannot be decoded");

  const bool alpha = features.has_alpha != 0;
  Image img = new_image(alpha ? Mode::kRGBA : Mode::kRGB, static_cast<int>(info.canvas_width),
                        static_cast<int>(info.canvas_height), Format::kWebp);
  const size_t n = static_cast<size_t>(img.width) * img.height;
  if (alpha) {
    std::memcpy(img.pixels.data(), frame, n * 4);
  } else {
    uint8_t* d = img.pixels.data();
    for (size_t i = 0; i < n; ++i) {
      d[3 * i] = frame[4 * i];
      d[3 * i + 1] = frame[4 * i + 1];
      d[3 * i + 2] = frame[4 * i + 2];
    }
  }
  if (options.exif_transpose) {
    const WebPDemuxer* demux = WebPAnimDecoderGetDemuxer(ad.dec);
    WebPChunkIterator it;
    if (demux && WebPDemuxGetChunk(demux, "EXIF", 1, &it)) {
      img.exif_orientation = exif_orientation(it.chunk.bytes, it.chunk.size);
      WebPDemuxReleaseChunkIterator(&it);
    }
  }
  return img;
}

}  // namespace clip::image::detail
