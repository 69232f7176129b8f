// Readers and writers of one index, and index files that lie: `clip search` (open + search) run
// while `clip index update` publishes generation after generation never fails and never sees two
// generations mixed; FAISS files, manifests and .npy files claiming absurd sizes are refused with
// an error naming the file before anything is sized from the claim.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "clip/error.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "search_check.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace fs = std::filesystem;
using clip::index::ImageIndex;
using clip::test::image_file;
using clip::test::model_path;
using clip::test::quiet_options;
using clip::test::TempDir;
using clip::test::tiny_model;

namespace {

clip::index::ModelIdentity identity() {
  return clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32);
}

// A few tiny images and their index.
struct SmallIndex {
  TempDir tmp;
  std::string images = tmp.path() + "/images";
  std::string index = tmp.path() + "/index";
  explicit SmallIndex(clip::index::BuildOptions options = quiet_options()) {
    fs::create_directories(images);
    for (const char* name : {"palette_color_10x10.png", "bilevel_10x10.png", "png_gray2.png", "png_pal1.png"})
      fs::copy_file(image_file(name), images + "/" + name);
    clip::index::build_index(tiny_model(), identity(), clip::index::source_from_argument(images, ""), index, options);
  }
  std::string faiss_path() const { return index + "/" + clip::index::read_manifest(index).faiss_file; }
  // The stored embedding of one indexed file.
  std::vector<float> embedding_of(const std::string& path) const {
    const ImageIndex idx = ImageIndex::open(index);
    const std::vector<float> a = clip::index::read_generation_embeddings(index, idx.manifest());
    for (int64_t i = 0; i < idx.size(); ++i)
      if (idx.record(i).path == path) {
        const float* row = a.data() + i * idx.dim();
        return std::vector<float>(row, row + idx.dim());
      }
    ADD_FAILURE() << path << " is not indexed";
    return {};
  }
};

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// One thread updates the index again and again (a file added, then removed), another opens and
// searches it as `clip search` does. Every search must succeed and find the query's own file
// first with similarity 1: a reader that mixed the metadata of one generation with the FAISS
// index of another would map the hit to another row. (Before readers retried and writers kept the
// previous generation, about 1 update in 84 here deleted the files of a generation a search was
// opening, so this test failed in about half of its runs.)
TEST(IndexReadersAndWriters, SearchesDuringUpdatesNeverFailOrMixGenerations) {
  SmallIndex s;
  const std::string target = s.images + "/palette_color_10x10.png";
  const std::vector<float> query = s.embedding_of(target);
  std::atomic<bool> stop{false};
  std::atomic<int> updates{0};
  std::atomic<bool> writer_failed{false};
  std::string writer_error;  // read after join
  std::thread writer([&] {
    try {
      for (int i = 0; !stop; ++i) {
        const std::string toggled = s.images + "/png_pal2.png";
        if (i % 2 == 0) fs::copy_file(image_file("png_pal2.png"), toggled);
        else fs::remove(toggled);
        clip::index::update_index(tiny_model(), identity(), s.index, quiet_options());
        ++updates;
      }
    } catch (const std::exception& e) {
      writer_error = e.what();
      writer_failed = true;
    }
  });
  int searches = 0, failures = 0;
  std::string first_failure;
  // 500 searches, and at least 50 updates published meanwhile (on a fast reader, more searches).
  while ((searches < 500 || updates < 50) && !writer_failed && searches < 200000) {
    ++searches;
    try {
      const ImageIndex index = ImageIndex::open(s.index);
      const std::vector<clip::index::Hit> hits = index.search(query.data(), 2);
      if (hits.empty() || hits[0].path != target || hits[0].score < 0.999f)
        throw std::runtime_error(
            "generation " + std::to_string(index.manifest().generation) + ": the best hit is " +
            (hits.empty() ? std::string("none") : hits[0].path + " " + std::to_string(hits[0].score)));
    } catch (const std::exception& e) {
      if (failures++ == 0) first_failure = e.what();
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(writer_error, "");
  EXPECT_EQ(failures, 0) << failures << " of " << searches << " searches failed during " << updates
                         << " updates; the first: " << first_failure;
  std::printf("%d searches during %d updates, %d failed\n", searches, updates.load(), failures);
  // What readers may still open stays: the chunks of the current generation and of the previous
  // one (listed as previous_files), the previous FAISS file; nothing else, no temporary file.
  const clip::index::Manifest m = clip::index::read_manifest(s.index);
  const int64_t g = m.generation;
  std::set<std::string> expected = {"manifest.json", "model-config.json", ".lock", m.faiss_file, m.skipped_file,
                                    "faiss-" + std::to_string(g - 1) + ".index"};
  for (const auto& c : m.chunks) expected.insert({c.embeddings, c.metadata});
  expected.insert(m.previous_files.begin(), m.previous_files.end());
  std::set<std::string> found;
  for (const auto& e : fs::directory_iterator(s.index)) found.insert(e.path().filename().string());
  EXPECT_EQ(found, expected);
}

// A generation file missing from the current generation is an error naming it, not a loop.
TEST(IndexReadersAndWriters, AFileMissingFromTheCurrentGenerationIsAnError) {
  SmallIndex s;
  const std::string faiss = s.faiss_path();
  fs::remove(faiss);
  const std::string message = message_of([&] { ImageIndex::open(s.index); });
  EXPECT_NE(message.find(faiss), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

namespace {

// The FAISS header of an IndexFlatIP, as faiss::write_index writes it.
std::string flat_header(int32_t d, int64_t ntotal, uint64_t floats) {
  std::string out = "IxFI";
  auto put = [&](const auto& v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(d);
  put(ntotal);
  put(int64_t{1} << 20);
  put(int64_t{1} << 20);
  put(char{1});
  put(int32_t{0});
  put(floats);
  return out;
}

// Runs fn in a child process (so that its peak memory is its own) and returns the growth of the
// peak resident size in MiB, or -1 when fn did not throw a clip::Error naming `file`.
int64_t peak_growth_mib_of_failure(const std::function<void()>& fn, const std::string& file) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -2;
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    struct rusage before, after;
    ::getrusage(RUSAGE_SELF, &before);
    int64_t result = -1;
    try {
      fn();
    } catch (const clip::Error& e) {
      ::getrusage(RUSAGE_SELF, &after);
      if (std::string(e.what()).find(file) != std::string::npos) result = (after.ru_maxrss - before.ru_maxrss) / 1024;
    } catch (...) {
    }
    if (::write(pipe_fds[1], &result, sizeof result) != sizeof result) ::_exit(2);
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  int64_t result = -3;  // the child died (e.g. killed for memory)
  if (::read(pipe_fds[0], &result, sizeof result) != sizeof result) result = -3;
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return result;
}

}  // namespace

// A 1.8 KB FAISS file claiming 2^29 dimensions (2 GiB of vectors) is refused before FAISS reads
// it: a clean error naming the file and both claims, and no memory spent on the claim.
TEST(IndexHostileFiles, AFaissFileClaimingHugeSizesIsRefusedWithBoundedMemory) {
  SmallIndex s;
  const std::string faiss = s.faiss_path();
  const int64_t count = clip::index::read_manifest(s.index).count;
  std::string hostile = flat_header(1 << 29, count, uint64_t{1} << 29);
  hostile.resize(1800, '\0');
  clip::util::write_file_atomic(faiss, hostile);
  const std::string message = message_of([&] { ImageIndex::open(s.index); });
  EXPECT_NE(message.find(faiss), std::string::npos) << message;
  EXPECT_NE(message.find("536870912"), std::string::npos) << message;
  EXPECT_NE(message.find("dimension " + std::to_string(tiny_model().config().embed_dim)), std::string::npos) << message;
  const int64_t growth = peak_growth_mib_of_failure([&] { ImageIndex::open(s.index); }, faiss);
  EXPECT_GE(growth, 0) << "no clean error naming the file (-3: the reader died)";
  EXPECT_LT(growth, 64) << "MiB of peak memory for a 1.8 KB file";

  // The same claim with the manifest's dimension: the vectors claimed are not in the file.
  const int dim = tiny_model().config().embed_dim;
  hostile = flat_header(dim, count, uint64_t{1} << 39);
  hostile.resize(1800, '\0');
  clip::util::write_file_atomic(faiss, hostile);
  const int64_t growth2 = peak_growth_mib_of_failure([&] { ImageIndex::open(s.index); }, faiss);
  EXPECT_GE(growth2, 0);
  EXPECT_LT(growth2, 64);
  EXPECT_NE(message_of([&] { ImageIndex::open(s.index); }).find("only"), std::string::npos);

  // A real FAISS file cut short, or with bytes after its end, or of another index type.
  SmallIndex other;
  const std::string good = clip::util::read_file(other.faiss_path());
  clip::util::write_file_atomic(faiss, good.substr(0, good.size() - 10));
  EXPECT_NE(message_of([&] { ImageIndex::open(s.index); }).find("only"), std::string::npos);
  clip::util::write_file_atomic(faiss, good + "extra");
  EXPECT_NE(message_of([&] { ImageIndex::open(s.index); }).find("bytes follow the end"), std::string::npos);
  clip::util::write_file_atomic(faiss, "IHNf" + good.substr(4));
  EXPECT_NE(message_of([&] { ImageIndex::open(s.index); }).find("\"IHNf\", expected \"IxFI\""), std::string::npos);
}

// An IVF file whose inverted list holds an id past the rows would make searches read past the
// metadata: refused.
TEST(IndexHostileFiles, AnIvfListIdPastTheRowsIsRefused) {
  clip::index::BuildOptions o = quiet_options();
  o.params.kind = clip::index::IndexKind::kIvf;
  o.params.nlist = 2;
  SmallIndex s(o);
  EXPECT_NO_THROW(ImageIndex::open(s.index));
  std::string bytes = clip::util::read_file(s.faiss_path());
  const int64_t bad_id = 1000;
  std::memcpy(&bytes[bytes.size() - sizeof bad_id], &bad_id, sizeof bad_id);  // the last list's last id
  clip::util::write_file_atomic(s.faiss_path(), bytes);
  EXPECT_NE(message_of([&] { ImageIndex::open(s.index); }).find("holds the id 1000"), std::string::npos);
}

// Manifests and embeddings claiming absurd sizes are refused before anything is sized from them.
TEST(IndexHostileFiles, ManifestAndNpyClaimingAbsurdSizesAreRefused) {
  SmallIndex s;
  const std::string manifest_path = s.index + "/manifest.json";
  const std::string good = clip::util::read_file(manifest_path);
  const std::string dim_field = "\"dim\": " + std::to_string(tiny_model().config().embed_dim);
  ASSERT_NE(good.find(dim_field), std::string::npos);
  std::string huge_dim = good;
  huge_dim.replace(huge_dim.find(dim_field), dim_field.size(), "\"dim\": 536870912");
  clip::util::write_file_atomic(manifest_path, huge_dim);
  std::string message = message_of([&] { ImageIndex::open(s.index); });
  EXPECT_NE(message.find("manifest.json"), std::string::npos) << message;
  EXPECT_NE(message.find("536870912"), std::string::npos) << message;

  const std::string count_field = "\"count\": 4";
  ASSERT_NE(good.find(count_field), std::string::npos) << good;
  std::string huge_count = good;
  huge_count.replace(huge_count.find(count_field), count_field.size(), "\"count\": 1099511627776");
  clip::util::write_file_atomic(manifest_path, huge_count);
  message = message_of([&] { ImageIndex::open(s.index); });
  EXPECT_NE(message.find("1099511627776"), std::string::npos) << message;
  clip::util::write_file_atomic(manifest_path, good);

  // An embeddings .npy claiming 2^40 rows: `update` (which reads it) names the file.
  const std::string npy = s.index + "/" + clip::index::read_manifest(s.index).chunks.at(0).embeddings;
  for (const std::string shape : {"1099511627776, 64", "4611686018427387904, 4"}) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    header.append(63 - (10 + header.size()) % 64, ' ');
    header += '\n';
    std::string bytes("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size());
    bytes += '\0';
    clip::util::write_file_atomic(npy, bytes + header + std::string(1024, '\0'));
    const int64_t growth = peak_growth_mib_of_failure(
        [&] { clip::index::update_index(tiny_model(), identity(), s.index, quiet_options()); }, npy);
    EXPECT_GE(growth, 0) << shape;
    EXPECT_LT(growth, 64) << shape;
  }
}
