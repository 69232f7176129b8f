// WebDataset shards: brace expansion, grouping members into samples, bad samples and shards.
#include <gtest/gtest.h>

#include <utility>

#include "clip/data.h"
#include "clip/error.h"
#include "tar_writer.h"
#include "temp_dir.h"
#include "util/file_io.h"

namespace clip::data {
namespace {

using clip::test::TempDir;
using clip::test::write_tar;

TEST(Braces, RangesListsNestedRepeated) {
  EXPECT_EQ(expand_braces("s/{00008..00011}.tar"),
            (std::vector<std::string>{"s/00008.tar", "s/00009.tar", "s/00010.tar", "s/00011.tar"}));
  EXPECT_EQ(expand_braces("{8..10}"), (std::vector<std::string>{"8", "9", "10"}));
  EXPECT_EQ(expand_braces("{3..1}"), (std::vector<std::string>{"3", "2", "1"}));
  EXPECT_EQ(expand_braces("{a,b}-{0..1}"), (std::vector<std::string>{"a-0", "a-1", "b-0", "b-1"}));
  EXPECT_EQ(expand_braces("x{a,{b,c}d}y"), (std::vector<std::string>{"xay", "xbdy", "xcdy"}));
  EXPECT_EQ(expand_braces("{a,}z"), (std::vector<std::string>{"az", "z"}));
  EXPECT_EQ(expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_EQ(expand_braces("{1..2}{1..2}").size(), 4u);
}

TEST(Braces, BadPatterns) {
  for (const char* p : {"", "a{b", "a}b", "{}", "{1..x}", "{-1..2}", "x}{a,b}", "{0..99999999}"})
    EXPECT_THROW(expand_braces(p), Error) << p;
}

std::vector<Example> read_all(const std::vector<std::string>& shards) {
  std::vector<Example> out;
  ShardReader(shards).for_each([&](Example&& e) {
    out.push_back(std::move(e));
    return true;
  });
  return out;
}

TEST(Shards, SamplesGroupedByKey) {
  TempDir dir;
  const std::string s0 = dir.file("shard-0.tar"), s1 = dir.file("shard-1.tar");
  write_tar(s0, {{"d/000.jpg", "JPEGBYTES0"},
                 {"d/000.txt", "a cat\n"},
                 {"d/001.png", "PNGBYTES1"},
                 {"d/001.json", R"({"captions": ["one", "two"], "other": 3})"},
                 {"d/001.cls", "4\n"},
                 {"d/002.txt", "no image here"},
                 {"d/003.webp", "W"},
                 {"d/003.json", "{broken"}});
  write_tar(s1,
            {{"x.y.jpg", "J"}, {"x.y.cls", "7"}, {"z.jpg", "J"}, {"z.cls", "seven"}, {"w.jpg", "J"}, {"w.txt", "  "}});
  const std::vector<Example> ex = read_all(expand_braces(dir.path() + "/shard-{0..1}.tar"));
  ASSERT_EQ(ex.size(), 7u);
  EXPECT_TRUE(ex[0].ok()) << ex[0].error;
  EXPECT_EQ(ex[0].source, "shard-0.tar:d/000");
  EXPECT_EQ(ex[0].image_bytes, "JPEGBYTES0");
  EXPECT_EQ(ex[0].captions, (std::vector<std::string>{"a cat"}));
  EXPECT_EQ(ex[0].label, -1);
  EXPECT_TRUE(ex[1].ok()) << ex[1].error;
  EXPECT_EQ(ex[1].captions, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(ex[1].label, 4);
  EXPECT_NE(ex[2].error.find("no image"), std::string::npos) << ex[2].error;
  EXPECT_NE(ex[3].error.find("not a JSON object"), std::string::npos) << ex[3].error;
  EXPECT_TRUE(ex[4].ok()) << ex[4].error;    // a label without caption: classification shards
  EXPECT_EQ(ex[4].source, "shard-1.tar:x");  // the key ends at the first dot of the base name
  EXPECT_EQ(ex[4].label, 7);
  EXPECT_NE(ex[5].error.find("not a non-negative integer"), std::string::npos) << ex[5].error;
  EXPECT_EQ(ex[6].error, "empty caption");

  // Stopping early.
  int seen = 0;
  ShardReader({s0, s1}).for_each([&](Example&&) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);

  auto ds = read_shards({s0, s1}, "wds:test");
  EXPECT_EQ(ds->size(), 7u);
  EXPECT_EQ(ds->at(1).captions.size(), 2u);
  EXPECT_NE(ds->description().find("wds:test"), std::string::npos);
}

TEST(Shards, MissingAndCorruptShardsYieldOneBadExampleAndGoOn) {
  TempDir dir;
  const std::string good = dir.file("good.tar"), cut = dir.file("cut.tar");
  write_tar(good, {{"a.jpg", "J"}, {"a.txt", "t"}});
  write_tar(cut, {{"a.jpg", std::string(5000, 'J')}, {"a.txt", "t"}, {"b.jpg", "J"}, {"b.txt", "u"}});
  const std::string whole = util::read_file(cut);
  util::write_file_atomic(cut, whole.substr(0, 2048));  // inside the first image
  dir.write("garbage.tar", std::string(1024, 'x'));
  const std::vector<Example> ex = read_all({dir.file("absent.tar"), cut, dir.file("garbage.tar"), good});
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_NE(ex[0].error.find("absent.tar"), std::string::npos) << ex[0].error;
  EXPECT_NE(ex[1].error.find("truncated"), std::string::npos) << ex[1].error;
  EXPECT_FALSE(ex[2].ok());
  EXPECT_TRUE(ex[3].ok()) << ex[3].error;
  EXPECT_THROW(ShardReader({}), Error);
}

}  // namespace
}  // namespace clip::data
