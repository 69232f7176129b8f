// Base64 (RFC 4648, standard alphabet, padded) for the HTTP APIs: the float32 embeddings of
// OpenAI's encoding_format "base64", and the images of `data:image/...;base64,` URIs. Encoding
// and decoding are Boost.Beast's (boost/beast/core/detail/base64.hpp); the strict validation
// (alphabet, padding, length) is ours, because Beast's decoder stops silently at a bad byte.
#pragma once

#include <string>
#include <string_view>

namespace clip::serve {

std::string base64_encode(const void* data, size_t size);

// The bytes of `text`, which must be padded base64 of at most `max_decoded_bytes` bytes (checked
// from the length, before anything is allocated). Throws clip::Error naming `what`: kInvalidInput
// for malformed base64, kTooLarge beyond the limit.
std::string base64_decode(std::string_view text, size_t max_decoded_bytes, const std::string& what);

// An image given as `data:image/<type>[;param...];base64,<data>`.
struct DataUri {
  std::string media_type;  // "image/png", lower-cased
  std::string bytes;       // decoded
};
bool is_data_uri(std::string_view text);
// Throws clip::Error naming `what` for anything but a base64 image data URI (a URI that is not
// an image, or not base64, or malformed), kTooLarge beyond `max_decoded_bytes`.
DataUri parse_image_data_uri(std::string_view text, size_t max_decoded_bytes, const std::string& what);

}  // namespace clip::serve
