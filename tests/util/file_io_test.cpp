// Atomic writes (util/file_io.h): a failed or killed writer never leaves a partial file under the
// target's name, its temporary file is removed (by the writer on failure, by the next writer's
// clean-up after a kill); bounded reads. Whether fsync reached the disk cannot be observed without
// cutting the power, so that part is not tested here (docs/search.md, docs/train.md).
#include "util/file_io.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "clip/error.h"
#include "temp_dir.h"
#include "util/npy.h"

namespace fs = std::filesystem;
using clip::test::TempDir;

namespace {

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

clip::ErrorKind kind_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const clip::Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no clip::Error";
  return clip::ErrorKind::kInternal;
}

TEST(WriteFileAtomic, ReplacesTheFileAndLeavesNoTemporaryFile) {
  TempDir tmp;
  const std::string path = tmp.file("out.json");
  clip::util::write_file_atomic(path, "first");
  clip::util::write_file_atomic(path, std::vector<std::string_view>{"sec", "ond"});
  EXPECT_EQ(clip::util::read_file(path), "second");
  EXPECT_EQ(names_in(tmp.path()), std::vector<std::string>{"out.json"});
}

// A write that fails part way (the file size limit stands in for a full disk) leaves the old
// file whole and no temporary file.
TEST(WriteFileAtomic, AFailedWriteKeepsTheOldFileAndRemovesItsTemporaryFile) {
  TempDir tmp;
  const std::string path = tmp.file("weights.bin");
  clip::util::write_file_atomic(path, "old content");
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 1 << 16;
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // write() fails with EFBIG instead
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const clip::ErrorKind kind = kind_of([&] { clip::util::write_file_atomic(path, std::string(1 << 20, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(kind, clip::ErrorKind::kIo);
  EXPECT_EQ(clip::util::read_file(path), "old content");
  EXPECT_EQ(names_in(tmp.path()), std::vector<std::string>{"weights.bin"});

  // A rename that fails (the target is a folder) removes the temporary file too.
  fs::create_directories(tmp.file("folder/inside"));
  EXPECT_EQ(kind_of([&] { clip::util::write_file_atomic(tmp.file("folder"), "data"); }), clip::ErrorKind::kIo);
  EXPECT_TRUE(fs::is_directory(tmp.file("folder/inside")));
  EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"folder", "weights.bin"}));
}

// Writers killed at random moments: the target is always absent or one whole version, and the
// temporary files they leave are what remove_temp_files_of removes (nothing else).
TEST(WriteFileAtomic, AKilledWriterNeverLeavesAPartialFile) {
  TempDir tmp;
  const std::string path = tmp.file("data.bin");
  const size_t size = 4 << 20;
  std::mt19937 rng(7);
  for (int round = 0; round < 12; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (char version = 'a';; version = version == 'z' ? 'a' : version + 1)
        clip::util::write_file_atomic(path, std::string(size, version));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 60));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!fs::exists(path)) continue;
    const std::string got = clip::util::read_file(path);
    ASSERT_EQ(got.size(), size) << "round " << round;
    EXPECT_EQ(got.find_first_not_of(got[0]), std::string::npos) << "round " << round << ": a mix of two versions";
  }
  tmp.write("data.bin.tmp.notapid", "x");
  tmp.write("other.bin.tmp.123", "x");
  clip::util::remove_temp_files_of(path);
  for (const std::string& name : names_in(tmp.path()))
    EXPECT_TRUE(name == "data.bin" || name == "data.bin.tmp.notapid" || name == "other.bin.tmp.123") << name;
}

TEST(PublishFile, RenamesAFinishedTemporaryFileIntoPlace) {
  TempDir tmp;
  const std::string path = tmp.file("index.faiss");
  tmp.write("index.faiss.tmp.1", "written by a library");
  clip::util::publish_file(tmp.file("index.faiss.tmp.1"), path);
  EXPECT_EQ(clip::util::read_file(path), "written by a library");
  EXPECT_EQ(names_in(tmp.path()), std::vector<std::string>{"index.faiss"});
  EXPECT_EQ(kind_of([&] { clip::util::publish_file(tmp.file("missing.tmp.1"), path); }), clip::ErrorKind::kIo);
  EXPECT_NO_THROW(clip::util::sync_dir(tmp.path()));
}

TEST(ReadFile, KindsAndTheSizeBound) {
  TempDir tmp;
  EXPECT_EQ(kind_of([&] { clip::util::read_file(tmp.file("missing")); }), clip::ErrorKind::kNotFound);
  const std::string path = tmp.write("ten", "0123456789");
  EXPECT_EQ(clip::util::read_file(path, 10), "0123456789");
  EXPECT_EQ(kind_of([&] { clip::util::read_file(path, 9); }), clip::ErrorKind::kTooLarge);
}

TEST(CreateDirectories, CreatesParentsAndNamesWhatFails) {
  TempDir tmp;
  const std::string nested = tmp.file("a/b/c");
  clip::util::create_directories(nested, "the test folder");
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_NO_THROW(clip::util::create_directories(nested, "the test folder"));  // already there
  const std::string file = tmp.write("file", "x");
  try {
    clip::util::create_directories(file, "the test folder");
    ADD_FAILURE() << "a regular file was taken for a folder";
  } catch (const clip::Error& e) {
    EXPECT_EQ(e.kind(), clip::ErrorKind::kInvalidInput);
    EXPECT_EQ(std::string(e.what()), file + ": exists and is not a folder (expected the test folder)");
  }
  try {
    clip::util::create_directories(file + "/below", "the test folder");  // a parent is a file
    ADD_FAILURE() << "a folder was created below a regular file";
  } catch (const clip::Error& e) {
    EXPECT_EQ(e.kind(), clip::ErrorKind::kIo);
    EXPECT_EQ(std::string(e.what()).rfind(file + "/below: cannot create the test folder: ", 0), 0u) << e.what();
  }
}

TEST(OpenErrorKind, MissingPathsAreNotFound) {
  EXPECT_EQ(clip::util::open_error_kind(ENOENT), clip::ErrorKind::kNotFound);
  EXPECT_EQ(clip::util::open_error_kind(ENOTDIR), clip::ErrorKind::kNotFound);
  EXPECT_EQ(clip::util::open_error_kind(EACCES), clip::ErrorKind::kIo);
  EXPECT_EQ(clip::util::open_error_kind(EIO), clip::ErrorKind::kIo);
}

// .npy headers claiming absurd shapes are errors, whatever the product would overflow to.
TEST(Npy, AbsurdShapesAreErrors) {
  const std::string header_tail = ", }";
  for (const std::string shape :
       {"1099511627776, 1099511627776", "4611686018427387904, 4", "0, 99999999999999999999999", "18446744073709551616,",
        "4294967296, 4294967296, 16"}) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    header.append(63 - (10 + header.size()) % 64, ' ');
    header += '\n';
    std::string bytes("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header + std::string(64, '\0');
    EXPECT_THROW(clip::util::parse_npy(bytes, "hostile.npy"), clip::Error) << shape;
  }
}

// ReadOnlyFile: reads exact ranges; a range past the end, a missing file, a folder and a FIFO (which
// a plain open would wait on for a writer) are errors naming the path.
TEST(ReadOnlyFile, ReadsExactRangesAndRefusesWhatIsNotARegularFile) {
  TempDir tmp;
  const std::string path = tmp.path() + "/data.bin";
  clip::util::write_file_atomic(path, "0123456789");
  const clip::util::ReadOnlyFile file(path);
  EXPECT_EQ(file.size(), 10u);
  std::string out(4, '\0');
  file.read_at(3, out.data(), out.size(), "four bytes");
  EXPECT_EQ(out, "3456");
  try {
    file.read_at(8, out.data(), out.size(), "four bytes");
    ADD_FAILURE() << "a read past the end succeeded";
  } catch (const clip::Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot read four bytes");
  }
  auto refused = [](const std::string& p, const std::string& expected, clip::ErrorKind kind) {
    try {
      clip::util::ReadOnlyFile f(p);
      ADD_FAILURE() << p << " was opened";
    } catch (const clip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(p + ": " + expected), std::string::npos) << e.what();
      EXPECT_EQ(e.kind(), kind) << e.what();
    }
  };
  refused(tmp.path() + "/missing", "cannot open", clip::ErrorKind::kNotFound);
  refused(tmp.path(), "not a regular file", clip::ErrorKind::kIo);
  const std::string fifo = tmp.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  refused(fifo, "not a regular file", clip::ErrorKind::kIo);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "the open waited for a writer";
}

}  // namespace
