// A strict, bounded multipart/form-data parser (RFC 7578) for request bodies the server has
// already read in full (the body limit bounds them): the boundary comes from the Content-Type,
// each part must carry `Content-Disposition: form-data; name="..."` (and `filename="..."` for
// files). Anything else — a missing or malformed boundary, a part without a name, a header
// block or a part count beyond the limits, no closing delimiter — is refused.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clip::serve {

struct FormPart {
  std::string name;          // the form field
  std::string filename;      // empty for a plain field
  std::string content_type;  // the part's Content-Type, if it had one
  std::string content;
};

struct MultipartLimits {
  size_t max_parts = 64;
  size_t max_part_header_bytes = 4096;  // the header block of one part
};

// The boundary of a `multipart/form-data; boundary=...` Content-Type value (1..70 characters,
// quoted or not). Throws clip::Error (kInvalidInput) when there is none or it is malformed.
std::string multipart_boundary(std::string_view content_type);

// The parts of `body`, in order. Throws clip::Error: kInvalidInput for malformed input,
// kTooLarge beyond `limits`.
std::vector<FormPart> parse_multipart(std::string_view body, std::string_view content_type,
                                      const MultipartLimits& limits = {});

}  // namespace clip::serve
