// The multipart/form-data parser: what browsers and curl send parses into its parts; malformed,
// truncated and oversized bodies are refused with the right error kind.
#include <gtest/gtest.h>

#include "clip/error.h"
#include "serve/multipart.h"

namespace {

using clip::ErrorKind;
using clip::serve::parse_multipart;

const std::string kType = "multipart/form-data; boundary=----WebKitFormBoundaryX3";

// Expects parse_multipart to throw clip::Error of `kind`.
void expect_refused(const std::string& body, const std::string& type, ErrorKind kind,
                    const clip::serve::MultipartLimits& limits = {}) {
  try {
    parse_multipart(body, type, limits);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const clip::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
  }
}

}  // namespace

TEST(Multipart, ParsesFieldsAndFilesAsBrowsersSendThem) {
  const std::string body =
      "------WebKitFormBoundaryX3\r\n"
      "Content-Disposition: form-data; name=\"image\"; filename=\"a \\\"b\\\".png\"\r\n"
      "Content-Type: image/png\r\n\r\n"
      "\x89PNG\r\n--not a boundary\r\n"
      "\r\n------WebKitFormBoundaryX3\r\n"
      "content-disposition: form-data; name=labels\r\n\r\n"
      "cat, dog\r\n------WebKitFormBoundaryX3--\r\n";
  const auto parts = parse_multipart(body, kType);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "image");
  EXPECT_EQ(parts[0].filename, "a \"b\".png");
  EXPECT_EQ(parts[0].content_type, "image/png");
  EXPECT_EQ(parts[0].content, "\x89PNG\r\n--not a boundary\r\n");
  EXPECT_EQ(parts[1].name, "labels");
  EXPECT_EQ(parts[1].filename, "");
  EXPECT_EQ(parts[1].content, "cat, dog");
}

TEST(Multipart, TheBoundaryMayBeQuotedAndAPartEmpty) {
  const std::string body = "--a b\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n\r\n--a b--";
  const auto parts = parse_multipart(body, "Multipart/Form-Data; charset=utf-8; boundary=\"a b\"");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].content, "");
}

TEST(Multipart, MalformedBodiesAreRefused) {
  const std::string part = "Content-Disposition: form-data; name=\"x\"\r\n\r\nvalue";
  const std::string b = "------WebKitFormBoundaryX3";
  expect_refused("", kType, ErrorKind::kInvalidInput);
  expect_refused(b + "--", kType, ErrorKind::kInvalidInput);  // no parts
  expect_refused("preamble\r\n" + b + "\r\n" + part + "\r\n" + b + "--", kType, ErrorKind::kInvalidInput);
  expect_refused(b + "\r\n" + part, kType, ErrorKind::kInvalidInput);               // no closing boundary
  expect_refused(b + "\r\n" + part + "\r\n" + b, kType, ErrorKind::kInvalidInput);  // truncated after it
  expect_refused(b + "\r\nContent-Disposition: form-data; name=\"x\"\r\nvalue\r\n" + b + "--", kType,
                 ErrorKind::kInvalidInput);  // headers never end
  expect_refused(b + "\r\nContent-Type: text/plain\r\n\r\nv\r\n" + b + "--", kType, ErrorKind::kInvalidInput);
  expect_refused(b + "\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\nv\r\n" + b + "--", kType,
                 ErrorKind::kInvalidInput);
  expect_refused(b + "\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\nv\r\n" + b + "--", kType,
                 ErrorKind::kInvalidInput);  // no name
  expect_refused(b + "\r\nContent-Disposition: form-data; name=\"x\r\n\r\nv\r\n" + b + "--", kType,
                 ErrorKind::kInvalidInput);  // unclosed quote
  expect_refused(b + "\r\nno colon here\r\n\r\nv\r\n" + b + "--", kType, ErrorKind::kInvalidInput);
  expect_refused(b + "\r\n" + part + "\r\n" + b + "xx", kType, ErrorKind::kInvalidInput);  // junk after a boundary
  // The Content-Type must be multipart/form-data with one sane boundary.
  const std::string ok = b + "\r\n" + part + "\r\n" + b + "--";
  expect_refused(ok, "multipart/mixed; boundary=----WebKitFormBoundaryX3", ErrorKind::kInvalidInput);
  expect_refused(ok, "multipart/form-data", ErrorKind::kInvalidInput);
  expect_refused(ok, "multipart/form-data; boundary=", ErrorKind::kInvalidInput);
  expect_refused(ok, "multipart/form-data; boundary=" + std::string(71, 'a'), ErrorKind::kInvalidInput);
  expect_refused(ok, "multipart/form-data; boundary=a; boundary=b", ErrorKind::kInvalidInput);
}

TEST(Multipart, LimitsAreTooLarge) {
  const std::string b = "------WebKitFormBoundaryX3";
  std::string body;
  for (int i = 0; i < 5; ++i)
    body += b + "\r\nContent-Disposition: form-data; name=\"f" + std::to_string(i) + "\"\r\n\r\nv\r\n";
  body += b + "--";
  clip::serve::MultipartLimits limits;
  limits.max_parts = 4;
  expect_refused(body, kType, ErrorKind::kTooLarge, limits);
  limits.max_parts = 5;
  EXPECT_EQ(parse_multipart(body, kType, limits).size(), 5u);
  const std::string big_header = b +
                                 "\r\nContent-Disposition: form-data; name=\"x\"\r\nX-Pad: " + std::string(5000, 'p') +
                                 "\r\n\r\nv\r\n" + b + "--";
  expect_refused(big_header, kType, ErrorKind::kTooLarge);
}
