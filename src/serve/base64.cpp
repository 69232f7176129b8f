#include "serve/base64.h"

#include <boost/beast/core/detail/base64.hpp>

#include <algorithm>
#include <cctype>

#include "clip/error.h"

namespace clip::serve {
namespace b64 = boost::beast::detail::base64;

std::string base64_encode(const void* data, size_t size) {
  std::string out(b64::encoded_size(size), '\0');
  out.resize(b64::encode(out.data(), data, size));
  return out;
}

std::string base64_decode(std::string_view text, size_t max_decoded_bytes, const std::string& what) {
  if (text.size() % 4 != 0)
    throw Error(what + ": base64 of " + std::to_string(text.size()) +
                " characters; expected a multiple of 4 (padded with '=')");
  if (text.size() / 4 * 3 > max_decoded_bytes + 2)
    throw Error(what + ": " + std::to_string(text.size() / 4 * 3) + " bytes of base64 data, more than the limit of " +
                    std::to_string(max_decoded_bytes),
                ErrorKind::kTooLarge);
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  const auto valid = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; };
  const auto bad = std::find_if_not(text.begin(), text.end() - static_cast<std::ptrdiff_t>(padding), valid);
  if (bad != text.end() - static_cast<std::ptrdiff_t>(padding))
    throw Error(what + ": not base64: a character outside A-Z a-z 0-9 + / at offset " +
                std::to_string(bad - text.begin()));
  std::string out(b64::decoded_size(text.size()), '\0');
  const auto [written, read] = b64::decode(out.data(), text.data(), text.size());
  if (read < text.size() - padding) throw Error(what + ": malformed base64");
  out.resize(written);
  if (out.size() > max_decoded_bytes)
    throw Error(what + ": " + std::to_string(out.size()) + " bytes, more than the limit of " +
                    std::to_string(max_decoded_bytes),
                ErrorKind::kTooLarge);
  return out;
}

bool is_data_uri(std::string_view text) {
  constexpr std::string_view kData = "data:";
  if (text.size() < kData.size()) return false;
  return std::equal(kData.begin(), kData.end(), text.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
}

DataUri parse_image_data_uri(std::string_view text, size_t max_decoded_bytes, const std::string& what) {
  if (!is_data_uri(text)) throw Error(what + ": not a data: URI");
  const size_t comma = text.find(',');
  if (comma == std::string_view::npos || comma > 256)
    throw Error(what + ": a data: URI without a ',' after its media type (expected data:image/png;base64,...)");
  std::string header(text.substr(5, comma - 5));
  std::transform(header.begin(), header.end(), header.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  DataUri uri;
  uri.media_type = header.substr(0, header.find(';'));
  constexpr std::string_view kBase64 = ";base64";
  const bool base64 =
      header.size() >= kBase64.size() && header.compare(header.size() - kBase64.size(), kBase64.size(), kBase64) == 0;
  if (uri.media_type.rfind("image/", 0) != 0 || !base64)
    throw Error(what + ": a data: URI of \"" + header.substr(0, 64) +
                "\"; expected an image in base64 (data:image/png;base64,...)");
  uri.bytes = base64_decode(text.substr(comma + 1), max_decoded_bytes, what);
  return uri;
}

}  // namespace clip::serve
