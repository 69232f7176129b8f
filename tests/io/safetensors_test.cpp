// safetensors: parsing the fixture checkpoints, writing and reading back, and every kind of
// malformed header giving a clear error.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "io/safetensors.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace {

using clip::io::DType;
using clip::io::parse_safetensors_header;

std::string make_file(const nlohmann::json& header, const std::string& data, int pad_to = 8) {
  std::string j = header.dump();
  j.append((pad_to - j.size() % pad_to) % pad_to, ' ');
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((uint64_t(j.size()) >> (8 * i)) & 0xff));
  return out + j + data;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.safetensors");
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ParsesAValidHeader) {
  const std::string f = make_file({{"__metadata__", {{"format", "pt"}}},
                                   {"b", {{"dtype", "F16"}, {"shape", {1, 2}}, {"data_offsets", {8, 12}}}},
                                   {"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}},
                                  std::string(12, '\0'));
  const auto h = parse_safetensors_header(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "x");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");  // in data order
  EXPECT_EQ(h.tensors[1].dtype, DType::kF16);
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.data_offset, f.size() - 12);
}

TEST(Safetensors, RejectsMalformedFilesWithNamedReasons) {
  const nlohmann::json ok = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  EXPECT_NE(error_of("").find("shorter than the 8-byte header length"), std::string::npos);
  EXPECT_NE(error_of(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10)).find("absurd"), std::string::npos);
  EXPECT_NE(error_of(make_file(ok, std::string(8, '\0')).substr(0, 20)).find("runs past the end"), std::string::npos);
  EXPECT_NE(error_of(make_file(ok, std::string(4, '\0'))).find("outside the data section"), std::string::npos);
  EXPECT_NE(
      error_of(make_file({{"a", {{"dtype", "Q7"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}}, std::string(8, '\0')))
          .find("unsupported dtype \"Q7\""),
      std::string::npos);
  EXPECT_NE(
      error_of(make_file({{"a", {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 8}}}}}, std::string(12, '\0')))
          .find("need 12"),
      std::string::npos);
  EXPECT_NE(error_of(make_file({{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                                {"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {4, 12}}}}},
                               std::string(12, '\0')))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(
      error_of(make_file({{"a", {{"dtype", "F32"}, {"shape", {-2}}, {"data_offsets", {0, 8}}}}}, std::string(8, '\0')))
          .find("non-negative"),
      std::string::npos);
  EXPECT_NE(error_of(make_file({{"a", {{"dtype", "F32"}}}}, "")).find("tensor \"a\""), std::string::npos);
  EXPECT_NE(error_of(make_file({{"__metadata__", {{"k", 1}}}}, "")).find("must be a string"), std::string::npos);
  std::string not_json = make_file(ok, std::string(8, '\0'));
  not_json[12] = '#';
  EXPECT_NE(error_of(not_json).find("not valid JSON"), std::string::npos);
  EXPECT_NE(
      error_of(make_file({{"a", {{"dtype", "F32"}, {"shape", {4611686018427387904LL, 4}}, {"data_offsets", {0, 8}}}}},
                         std::string(8, '\0')))
          .find("absurdly large"),
      std::string::npos);
}

TEST(Safetensors, WritesAndReadsBack) {
  const float a[3] = {1.5f, -2.0f, 3.25f};
  const uint16_t b[2] = {0x3c00, 0x0001};  // 1.0 and the smallest subnormal in F16
  const std::string path = std::string(::testing::TempDir()) + "/rt.safetensors";
  clip::io::write_safetensors(path, {{"a", DType::kF32, {3}, a, sizeof a}, {"b", DType::kF16, {2, 1}, b, sizeof b}},
                              {{"config", "{}"}});
  clip::io::SafetensorsFile f(path);
  const auto* ta = f.find("a");
  const auto* tb = f.find("b");
  ASSERT_TRUE(ta && tb);
  EXPECT_EQ(std::memcmp(f.data(*ta), a, sizeof a), 0);
  EXPECT_EQ(std::memcmp(f.data(*tb), b, sizeof b), 0);
  EXPECT_EQ(tb->shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(f.header().metadata.at("config"), "{}");
  EXPECT_EQ(f.find("c"), nullptr);
}

TEST(Safetensors, MissingFileIsNamed) {
  try {
    clip::io::SafetensorsFile f("/nonexistent/model.safetensors");
    FAIL();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.safetensors"), std::string::npos);
  }
}

TEST(SafetensorsFixtures, ReadsEveryFixtureCheckpoint) {
  CLIP_REQUIRE_SHARED_FIXTURES();
  const std::string dir = clip::test::shared_fixtures() + "/models/";
  struct Case {
    const char* file;
    DType weight_dtype;
    size_t tensors;
  };
  for (const Case& c :
       {Case{"tiny-vit.safetensors", DType::kF32, 0}, Case{"tiny-vit-f16.safetensors", DType::kF16, 0},
        Case{"tiny-rn-f16.safetensors", DType::kF16, 0}, Case{"tiny-vit-f16.hf.safetensors", DType::kF16, 0}}) {
    clip::io::SafetensorsFile f(dir + c.file);
    EXPECT_GT(f.header().tensors.size(), 20u) << c.file;
    const auto* scale = f.find("logit_scale");
    ASSERT_NE(scale, nullptr) << c.file;
    EXPECT_TRUE(scale->shape.empty()) << c.file;
    EXPECT_EQ(scale->dtype, c.weight_dtype) << c.file;
  }
  clip::io::SafetensorsFile vit(dir + "tiny-vit.safetensors");
  const auto* conv = vit.find("visual.conv1.weight");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->shape, (std::vector<int64_t>{64, 3, 8, 8}));
  const auto* tok = vit.find("token_embedding.weight");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->shape, (std::vector<int64_t>{49408, 64}));
}

}  // namespace
