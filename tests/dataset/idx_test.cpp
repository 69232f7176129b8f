// IDX readers (raw and gzip), header validation, and the real Fashion-MNIST when installed.
#include <gtest/gtest.h>
#include <zlib.h>

#include "clip/data.h"
#include "clip/error.h"
#include "temp_dir.h"
#include "util/file_io.h"

namespace clip::data {
namespace {

using clip::test::TempDir;

std::string be32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
}

// Three 2×3 images whose pixel (r, c) is 10·image + 3·r + c, labels 2 0 1.
std::string images_idx() {
  std::string s = std::string("\0\0\x08\x03", 4) + be32(3) + be32(2) + be32(3);
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) s += static_cast<char>(10 * i + 3 * r + c);
  return s;
}
std::string labels_idx() { return std::string("\0\0\x08\x01", 4) + be32(3) + std::string("\x02\x00\x01", 3); }

std::string gzip(const std::string& raw) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(raw.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void expect_small_set(const Dataset& ds) {
  ASSERT_EQ(ds.size(), 3u);
  const Example e = ds.at(2);
  EXPECT_TRUE(e.ok());
  EXPECT_EQ(e.label, 1);
  EXPECT_EQ(e.pixels.mode, image::Mode::kL);
  EXPECT_EQ(e.pixels.width, 3);
  EXPECT_EQ(e.pixels.height, 2);
  EXPECT_EQ(e.pixels.pixels, (std::vector<uint8_t>{20, 21, 22, 23, 24, 25}));
  EXPECT_EQ(ds.at(0).label, 2);
  EXPECT_THROW(ds.at(3), Error);
}

TEST(Idx, RawAndGzipReadTheSame) {
  TempDir dir;
  auto raw = open_idx(dir.write("i", images_idx()), dir.write("l", labels_idx()));
  expect_small_set(*raw);
  auto gz = open_idx(dir.write("i.gz", gzip(images_idx())), dir.write("l.gz", gzip(labels_idx())), {"a", "b", "c"});
  expect_small_set(*gz);
  EXPECT_EQ(gz->class_names().size(), 3u);
  // decode_example_image hands back the pixels.
  EXPECT_EQ(decode_example_image(gz->at(1)).pixels[0], 10);
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    FAIL() << "expected an error containing " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Idx, BadFilesAreRefusedWithReasons) {
  TempDir dir;
  const std::string labels = dir.write("l", labels_idx());
  std::string img = images_idx();
  expect_error([&] { open_idx(dir.write("trunc", img.substr(0, img.size() - 1)), labels); }, "(truncated)");
  expect_error([&] { open_idx(dir.write("long", img + "x"), labels); }, "(trailing data)");
  expect_error([&] { open_idx(dir.write("hdr", img.substr(0, 10)), labels); }, "truncated IDX header");
  expect_error([&] { open_idx(dir.write("tiny", "ab"), labels); }, "too short");
  std::string bad_type = img;
  bad_type[2] = 0x0D;
  expect_error([&] { open_idx(dir.write("type", bad_type), labels); }, "element type 13");
  expect_error([&] { open_idx(labels, labels); }, "1 dimensions, expected 3");
  const std::string two_labels = std::string("\0\0\x08\x01", 4) + be32(2) + std::string("\x00\x01", 2);
  expect_error([&] { open_idx(dir.write("i", img), dir.write("l2", two_labels)); }, "2 labels for 3 images");
  expect_error([&] { open_idx(dir.write("i", img), labels, {"only", "two"}); }, "label 2 at index 0");
  const std::string gz = gzip(img);
  expect_error([&] { open_idx(dir.write("cut.gz", gz.substr(0, gz.size() / 2)), labels); }, "truncated gzip");
  expect_error([&] { open_idx(dir.file("absent"), labels); }, "absent");
}

TEST(Idx, FashionMnistTrainAndTestFromDebianPackage) {
  if (!util::file_exists(std::string(kFashionMnistDir) + "/train-labels-idx1-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (" << kFashionMnistDir << ")";
  auto train = open_fashion_mnist("train");
  auto test = open_fashion_mnist("test");
  ASSERT_EQ(train->size(), 60000u);
  ASSERT_EQ(test->size(), 10000u);
  // Values read from the files with Python's gzip module.
  const std::vector<int> train_first = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
  const std::vector<int> test_first = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};
  for (size_t i = 0; i < train_first.size(); ++i) EXPECT_EQ(train->at(i).label, train_first[i]) << i;
  for (size_t i = 0; i < test_first.size(); ++i) EXPECT_EQ(test->at(i).label, test_first[i]) << i;
  EXPECT_EQ(train->at(59999).label, 5);
  EXPECT_EQ(test->at(9999).label, 5);
  const Example e = train->at(0);
  ASSERT_EQ(e.pixels.width, 28);
  ASSERT_EQ(e.pixels.height, 28);
  long sum = 0;
  for (uint8_t v : e.pixels.pixels) sum += v;
  EXPECT_EQ(sum, 76247);
  EXPECT_EQ(e.pixels.pixels[14 * 28 + 12], 237);
  EXPECT_EQ(train->class_names()[9], "Ankle boot");
  EXPECT_THROW(open_fashion_mnist("validation"), Error);
  EXPECT_THROW(open_fashion_mnist("train", "/nonexistent"), Error);
}

}  // namespace
}  // namespace clip::data
