// UTF-8 validation (util/utf8.h): well-formed UTF-8 (Unicode Table 3-7, as Python's "strict" and
// JSON text need it) and Python's "surrogatepass" (which the pickle reader accepts).
#include "util/utf8.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

using clip::util::is_valid_utf8;
using clip::util::Surrogates;

namespace {

// nlohmann's serializer checks UTF-8 on its own (a DFA of Bjoern Hoehrmann's): an independent oracle.
bool json_accepts(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

std::string hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof(buf), "%02X ", c);
    out += buf;
  }
  return out;
}

}  // namespace

// Expected values as Python 3 gives them: b.decode("utf-8") and b.decode("utf-8", "surrogatepass").
TEST(Utf8, PythonStrictAndSurrogatepass) {
  struct Case {
    std::string bytes;
    bool strict, surrogatepass;
  };
  const Case cases[] = {
      {"", true, true},
      {"abc", true, true},
      {"\xc3\xa9", true, true},                   // é
      {"\xe2\x82\xac", true, true},               // €
      {"\xf0\x9f\x98\x80", true, true},           // U+1F600
      {"\xf4\x8f\xbf\xbf", true, true},           // U+10FFFF
      {"\xed\x9f\xbf", true, true},               // U+D7FF, the last before the surrogates
      {"\xed\xa0\x80", false, true},              // U+D800, an encoded surrogate
      {"\xed\xbf\xbf", false, true},              // U+DFFF
      {"\xed\xa0\xbd\xed\xb8\x80", false, true},  // a surrogate pair, CESU-8 style
      {"\xc0\x80", false, false},                 // overlong NUL
      {"\xc1\xbf", false, false},                 // overlong
      {"\xe0\x80\x80", false, false},             // overlong
      {"\xf0\x8f\xbf\xbf", false, false},         // overlong
      {"\xf4\x90\x80\x80", false, false},         // above U+10FFFF
      {"\xf5\x80\x80\x80", false, false},         // no such lead byte
      {"\xff", false, false},
      {"\x80", false, false},               // a lone continuation byte
      {"\xe2\x82", false, false},           // truncated
      {"\xed\xa0", false, false},           // a truncated surrogate
      {"a\xe2\x82\xac\xe2", false, false},  // truncated at the end
  };
  for (const Case& c : cases) {
    EXPECT_EQ(is_valid_utf8(c.bytes), c.strict) << hex(c.bytes);
    EXPECT_EQ(is_valid_utf8(c.bytes, Surrogates::kReject), c.strict) << hex(c.bytes);
    EXPECT_EQ(is_valid_utf8(c.bytes, Surrogates::kAccept), c.surrogatepass) << hex(c.bytes);
  }
}

// Random short sequences of the bytes where the rules change, against the JSON serializer's check.
// Surrogatepass differs only at lead byte ED (never a continuation byte), whose second-byte range
// then matches EC's: so "surrogatepass accepts s" equals "strict accepts s with every ED as EC".
TEST(Utf8, AgreesWithJsonSerializer) {
  const unsigned char interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                                       0xC2, 0xDF, 0xE0, 0xEC, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, sizeof(interesting) - 1), length(1, 6);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string s;
    for (size_t k = length(rng); k > 0; --k) s += static_cast<char>(interesting[pick(rng)]);
    ASSERT_EQ(is_valid_utf8(s), json_accepts(s)) << hex(s);
    std::string ed_as_ec = s;
    for (char& c : ed_as_ec)
      if (static_cast<unsigned char>(c) == 0xED) c = static_cast<char>(0xEC);
    ASSERT_EQ(is_valid_utf8(s, Surrogates::kAccept), json_accepts(ed_as_ec)) << hex(s);
  }
}

TEST(Utf8, EncodesWhatItDecodes) {
  for (char32_t c : {U'\0', U'A', char32_t{0x7F}, char32_t{0x80}, char32_t{0x7FF}, char32_t{0x800}, char32_t{0xD800},
                     char32_t{0xDFFF}, char32_t{0xFFFF}, char32_t{0x10000}, char32_t{0x10FFFF}}) {
    std::string s;
    clip::util::append_utf8(s, c);
    const bool surrogate = c >= 0xD800 && c <= 0xDFFF;
    const clip::util::Utf8Step step = clip::util::decode_utf8_at(s, 0, Surrogates::kAccept);
    EXPECT_TRUE(step.valid);
    EXPECT_EQ(step.code_point, c);
    EXPECT_EQ(step.length, s.size());
    EXPECT_EQ(is_valid_utf8(s), !surrogate);
  }
}
