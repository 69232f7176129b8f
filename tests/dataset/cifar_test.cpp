// CIFAR readers: binary records and Python pickles (written here opcode by opcode, in the layout
// of the official Python 2 files), planar → interleaved pixels, labels, bad files.
#include <gtest/gtest.h>

#include "clip/data.h"
#include "clip/error.h"
#include "temp_dir.h"

namespace clip::data {
namespace {

using clip::test::TempDir;

// Image i's pixel p of channel c is (i + 7·c + p) mod 256.
std::string planar(int i) {
  std::string s;
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 1024; ++p) s += static_cast<char>((i + 7 * c + p) & 255);
  return s;
}

void expect_pixels(const Example& e, int i) {
  ASSERT_EQ(e.pixels.width, 32);
  ASSERT_EQ(e.pixels.mode, image::Mode::kRGB);
  for (int p : {0, 1, 500, 1023})
    for (int c = 0; c < 3; ++c) EXPECT_EQ(e.pixels.pixels[p * 3 + c], (i + 7 * c + p) & 255) << p << " " << c;
}

std::string names(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "class" + std::to_string(i) + "\n";
  return s;
}

TEST(Cifar, TenBinary) {
  TempDir dir;
  const std::string root = dir.path() + "/cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b)
    dir.write("cifar-10-batches-bin/data_batch_" + std::to_string(b) + ".bin", char(b) + planar(b));
  dir.write("cifar-10-batches-bin/test_batch.bin", std::string(1, 9) + planar(40) + std::string(1, 0) + planar(41));
  dir.write("cifar-10-batches-bin/batches.meta.txt", names(10) + "\n");
  auto train = open_cifar(dir.path(), "train");  // the parent folder is accepted too
  ASSERT_EQ(train->size(), 5u);
  EXPECT_EQ(train->at(3).label, 4);
  expect_pixels(train->at(3), 4);
  auto test = open_cifar(root, "test");
  ASSERT_EQ(test->size(), 2u);
  EXPECT_EQ(test->at(0).label, 9);
  EXPECT_EQ(test->at(1).label, 0);
  expect_pixels(test->at(1), 41);
  EXPECT_EQ(test->class_names().size(), 10u);
  EXPECT_EQ(test->at(1).source, "test_batch.bin:1");
  EXPECT_THROW(open_cifar(root, "val"), Error);

  dir.write("cifar-10-batches-bin/test_batch.bin", std::string(1, 9) + planar(40).substr(10));
  try {
    open_cifar(root, "test");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of the record size 3073"), std::string::npos) << e.what();
  }
  dir.write("cifar-10-batches-bin/test_batch.bin", std::string(1, 10) + planar(40));
  EXPECT_THROW(open_cifar(root, "test"), Error);  // label 10 of 10 classes
}

TEST(Cifar, HundredBinaryUsesFineLabels) {
  TempDir dir;
  dir.write("train.bin", std::string{3, 77} + planar(1));
  dir.write("test.bin", std::string{19, 42} + planar(2) + std::string{0, 99} + planar(3));
  dir.write("fine_label_names.txt", names(100));
  auto test = open_cifar(dir.path(), "test");
  ASSERT_EQ(test->size(), 2u);
  EXPECT_EQ(test->at(0).label, 42);
  EXPECT_EQ(test->at(1).label, 99);
  expect_pixels(test->at(1), 3);
  EXPECT_EQ(open_cifar(dir.path(), "train")->at(0).label, 77);
}

// --- a Python 2 pickle, protocol 2, as cPickle wrote the official files -------------------------

using namespace std::string_literals;  // "..."s keeps the NUL bytes pickles are full of

std::string str(const std::string& s) { return "U"s + static_cast<char>(s.size()) + s; }
std::string byte(int v) { return std::string(1, static_cast<char>(v)); }
std::string le32(uint32_t v) {
  return std::string{static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
}
// numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b') + BUILD (1, (n, 3072), dtype u1, False, bytes)
std::string ndarray(int n, const std::string& bytes) {
  const std::string minus_one = "J"s + "\xff\xff\xff\xff"s;
  return "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"s + "K" + byte(0) + byte(0x85) + str("b") +
         byte(0x87) + "R(" + "K" + byte(1) + "K" + byte(n) + "M" + byte(0x00) + byte(0x0c) + byte(0x86) +
         "cnumpy\ndtype\n" + str("u1") + "K" + byte(0) + "K" + byte(1) + byte(0x87) + "R(" + "K" + byte(3) + str("|") +
         "NNN" + minus_one + minus_one + "K" + byte(0) + "tb" + byte(0x89) + "T" +
         le32(static_cast<uint32_t>(bytes.size())) + bytes + "tb";
}
std::string label_list(const std::vector<int>& labels) {
  std::string p = "](";
  for (int l : labels) p += "K" + byte(l);
  return p + "e";
}
std::string batch_pickle(const char* label_key, const std::vector<int>& labels, int first_image, int array_rows = -1) {
  std::string data;
  for (size_t i = 0; i < labels.size(); ++i) data += planar(first_image + static_cast<int>(i));
  return "\x80\x02}("s + str("batch_label") + str("testing batch 1 of 1") + str(label_key) + label_list(labels) +
         str("data") + ndarray(array_rows >= 0 ? array_rows : static_cast<int>(labels.size()), data) +
         str("filenames") + "](" + str("x.png") + "e" + "u.";
}
std::string names_pickle(const char* key, int n) {
  std::string p = "\x80\x02}("s + str(key) + "](";
  for (int i = 0; i < n; ++i) p += str("name" + std::to_string(i));
  return p + "eu.";
}

TEST(Cifar, TenPython) {
  TempDir dir;
  const std::string root = dir.path() + "/cifar-10-batches-py";
  for (int b = 1; b <= 5; ++b)
    dir.write("cifar-10-batches-py/data_batch_" + std::to_string(b), batch_pickle("labels", {b, 9 - b}, 10 * b));
  dir.write("cifar-10-batches-py/test_batch", batch_pickle("labels", {6, 7, 8}, 100));
  dir.write("cifar-10-batches-py/batches.meta", names_pickle("label_names", 10));
  auto train = open_cifar(dir.path(), "train");
  ASSERT_EQ(train->size(), 10u);
  EXPECT_EQ(train->at(5).label, 9 - 3);
  expect_pixels(train->at(5), 31);
  auto test = open_cifar(root, "test");
  ASSERT_EQ(test->size(), 3u);
  EXPECT_EQ(test->at(2).label, 8);
  expect_pixels(test->at(2), 102);
  EXPECT_EQ(test->class_names()[3], "name3");

  // A pickle that calls something other than numpy is refused, not executed.
  std::string evil = batch_pickle("labels", {1}, 0);
  const std::string reconstruct = "cnumpy.core.multiarray\n_reconstruct\n";
  evil.replace(evil.find(reconstruct), reconstruct.size(), "cposix\nsystem\n");
  dir.write("cifar-10-batches-py/test_batch", evil);
  try {
    open_cifar(root, "test");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("posix.system"), std::string::npos) << e.what();
  }
  // Truncated data bytes.
  std::string cut = batch_pickle("labels", {1}, 0);
  dir.write("cifar-10-batches-py/test_batch", cut.substr(0, cut.size() / 2));
  EXPECT_THROW(open_cifar(root, "test"), Error);
  // An array whose shape promises more rows than its bytes hold.
  dir.write("cifar-10-batches-py/test_batch", batch_pickle("labels", {1, 2}, 0, 3));
  try {
    open_cifar(root, "test");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 3 × 3072 uint8"), std::string::npos) << e.what();
  }
}

TEST(Cifar, HundredPython) {
  TempDir dir;
  dir.write("train", batch_pickle("fine_labels", {99, 0}, 5));
  dir.write("test", batch_pickle("fine_labels", {50}, 6));
  dir.write("meta", names_pickle("fine_label_names", 100));
  auto train = open_cifar(dir.path(), "train");
  ASSERT_EQ(train->size(), 2u);
  EXPECT_EQ(train->at(0).label, 99);
  expect_pixels(train->at(1), 6);
  EXPECT_EQ(open_cifar(dir.path(), "test")->at(0).label, 50);
  EXPECT_THROW(open_cifar(dir.path() + "/nothing", "test"), Error);
}

}  // namespace
}  // namespace clip::data
