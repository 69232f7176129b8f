// Image folders: classes by sorted folder name, images found recursively by extension.
#include <gtest/gtest.h>

#include "clip/data.h"
#include "clip/error.h"
#include "temp_dir.h"

namespace clip::data {
namespace {

using clip::test::TempDir;

std::string png(uint8_t value) {
  image::Rgb8 rgb;
  rgb.width = 2;
  rgb.height = 1;
  rgb.pixels = {value, value, value, value, value, value};
  return image::encode_png(rgb);
}

TEST(ImageFolder, ClassesSortedImagesRecursive) {
  TempDir dir;
  dir.write("zebra/b.PNG", png(1));
  dir.write("zebra/sub/a.png", png(2));
  dir.write("ant/x.jpg.txt", "not an image");
  dir.write("ant/y.png", png(3));
  dir.write("loose.png", png(4));  // not in a class folder: ignored
  auto ds = open_image_folder(dir.path());
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"ant", "zebra"}));
  ASSERT_EQ(ds->size(), 3u);
  EXPECT_EQ(ds->at(0).label, 0);
  EXPECT_EQ(ds->at(0).image_path, dir.file("ant/y.png"));
  EXPECT_EQ(ds->at(1).image_path, dir.file("zebra/b.PNG"));
  EXPECT_EQ(ds->at(2).image_path, dir.file("zebra/sub/a.png"));
  EXPECT_EQ(ds->at(2).label, 1);
  const image::Image img = decode_example_image(ds->at(2));
  EXPECT_EQ(img.width, 2);
  EXPECT_EQ(img.pixels[0], 2);
  EXPECT_THROW(ds->at(3), Error);
}

TEST(ImageFolder, EmptyOrMissingIsAnError) {
  TempDir dir;
  EXPECT_THROW(open_image_folder(dir.file("absent")), Error);
  EXPECT_THROW(open_image_folder(dir.path()), Error);  // no class folders
  dir.write("cls/readme.txt", "x");
  EXPECT_THROW(open_image_folder(dir.path()), Error);  // no images
}

TEST(Example, DecodeErrorsNameTheRecord) {
  Example ex;
  ex.source = "shard.tar:0007";
  ex.image_bytes = "not an image";
  try {
    decode_example_image(ex);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard.tar:0007"), std::string::npos) << e.what();
  }
  Example empty;
  empty.source = "x:1";
  EXPECT_THROW(decode_example_image(empty), Error);
  Example bad;
  bad.source = "x:2";
  bad.error = "empty caption";
  EXPECT_THROW(decode_example_image(bad), Error);
}

}  // namespace
}  // namespace clip::data
