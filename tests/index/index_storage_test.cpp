// The index's chunked storage: an update writes only the chunks of the files it touched (the
// others keep their files, bytes and mtimes); a chunk left mostly dropped is compacted; float16
// storage keeps the rounded float32 embeddings; an index of format version 1 (one embeddings file a
// generation) is read and updated.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "clip/image.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "index/manifest.h"
#include "search_check.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"
#include "util/half.h"
#include "util/npy.h"
#include "util/strings.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

using test::TempDir;

index::ModelIdentity identity() {
  return index::identify_model(test::tiny_model(), test::model_path(), Precision::kFP32);
}

// A small PNG of random colour blocks, different for every seed.
std::string random_png(uint32_t seed) {
  std::mt19937 rng(seed);
  image::Rgb8 rgb{12, 12, std::vector<uint8_t>(12 * 12 * 3)};
  for (auto& v : rgb.pixels) v = static_cast<uint8_t>(rng() & 0xFF);
  return image::encode_png(rgb);
}

// Writes n distinct images as DIR/img-NNN.png.
void write_images(const std::string& dir, int n, uint32_t seed) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/img-%03d.png", i);
    util::write_file_atomic(dir + name, random_png(seed + static_cast<uint32_t>(i)));
  }
}

index::BuildOptions options(int chunk) {
  index::BuildOptions o = test::quiet_options();
  o.batch_size = std::min(chunk, 10);  // chunks hold whole batches: of exactly `chunk` files here
  o.chunk_size = chunk;
  return o;
}

// Path -> stored embedding of an index's current generation.
std::map<std::string, std::vector<float>> embeddings_by_path(const std::string& dir) {
  const index::ImageIndex idx = index::ImageIndex::open(dir);
  const std::vector<float> rows = index::read_generation_embeddings(dir, idx.manifest());
  std::map<std::string, std::vector<float>> out;
  for (int64_t i = 0; i < idx.size(); ++i)
    out[idx.record(i).path].assign(rows.begin() + i * idx.dim(), rows.begin() + (i + 1) * idx.dim());
  return out;
}

// Rows of `a` whose path `b` also holds must be bit for bit equal (no row was recomputed or
// rewritten); returns how many it compared.
size_t expect_same_rows(const std::map<std::string, std::vector<float>>& a,
                        const std::map<std::string, std::vector<float>>& b) {
  size_t compared = 0;
  for (const auto& [path, row] : a) {
    const auto it = b.find(path);
    if (it == b.end()) continue;
    ++compared;
    EXPECT_TRUE(row == it->second) << path << ": its stored embedding changed";
  }
  return compared;
}

// The largest difference between the rows of two indexes of the same files.
double max_difference(const std::map<std::string, std::vector<float>>& a,
                      const std::map<std::string, std::vector<float>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [path, row] : a)
    for (size_t j = 0; j < row.size(); ++j) worst = std::max(worst, std::abs(double(row[j]) - b.at(path).at(j)));
  return worst;
}

struct FileState {
  int64_t size = 0, mtime_ns = 0;
  ino_t inode = 0;
  bool operator==(const FileState& o) const { return size == o.size && mtime_ns == o.mtime_ns && inode == o.inode; }
};

// Every chunk file of the folder with its size, mtime and inode.
std::map<std::string, FileState> chunk_files(const std::string& dir) {
  std::map<std::string, FileState> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("chunk-", 0) != 0) continue;
    struct stat st {};
    ::stat(e.path().c_str(), &st);
    out[name] = {st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, st.st_ino};
  }
  return out;
}

TEST(IndexStorage, AnUpdateTouchingOnePercentOfTheFilesWritesOnlyTheirChunks) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 200, 1);
  const index::BuildReport built =
      index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(10));
  ASSERT_EQ(built.indexed, 200);
  const index::Manifest before = index::read_manifest(idx);
  ASSERT_EQ(before.chunks.size(), 20u);
  const std::map<std::string, FileState> files_before = chunk_files(idx);
  ASSERT_EQ(files_before.size(), 40u);  // .npy and .jsonl of each chunk
  const auto rows_before = embeddings_by_path(idx);

  // 1 % of the files: one rewritten, one deleted, one added.
  util::write_file_atomic(images + "/img-042.png", random_png(1000));
  fs::remove(images + "/img-137.png");
  util::write_file_atomic(images + "/img-new.png", random_png(2000));
  const index::BuildReport r = index::update_index(test::tiny_model(), identity(), idx, options(10));
  EXPECT_EQ(r.embedded, 2);
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(r.indexed, 200);

  // Every chunk file of generation 1 is untouched (same inode, size, mtime) and still listed; the
  // one new chunk holds exactly the two embedded rows; the chunks of the rewritten and deleted files
  // list those rows as dropped.
  const index::Manifest after = index::read_manifest(idx);
  const std::map<std::string, FileState> files_after = chunk_files(idx);
  int64_t new_bytes = 0, new_rows = 0;
  for (const auto& [name, state] : files_after) {
    const auto it = files_before.find(name);
    if (it == files_before.end()) {
      new_bytes += state.size;
      continue;
    }
    EXPECT_TRUE(it->second == state) << name << " was rewritten";
  }
  for (const auto& [name, state] : files_before) EXPECT_TRUE(files_after.count(name)) << name << " was removed";
  ASSERT_EQ(after.chunks.size(), 21u);
  for (size_t c = 0; c < 20; ++c) EXPECT_EQ(after.chunks[c].embeddings, before.chunks[c].embeddings);
  new_rows = after.chunks[20].rows;
  EXPECT_EQ(new_rows, 2);
  EXPECT_EQ(after.chunks[4].dropped, (std::vector<int64_t>{2}));   // img-042
  EXPECT_EQ(after.chunks[13].dropped, (std::vector<int64_t>{7}));  // img-137
  // Two rows of 64 float32 plus a .npy header and two metadata lines: under 2 KB, against
  // 200 × (256 + ~200) bytes for rewriting everything.
  EXPECT_LT(new_bytes, 2048) << "bytes written to chunk files";

  // The unchanged rows are generation 1's, bit for bit; all rows are a fresh build's (which batches
  // the files otherwise, hence up to a few float roundings apart).
  const auto rows_after = embeddings_by_path(idx);
  auto unchanged = rows_after;
  unchanged.erase(images + "/img-042.png");
  EXPECT_EQ(expect_same_rows(unchanged, rows_before), 198u);  // all but img-042 (rewritten) and img-new
  const std::string fresh = dir.file("fresh");
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), fresh, options(10));
  EXPECT_LT(max_difference(rows_after, embeddings_by_path(fresh)), 1e-6);
  const index::ImageIndex updated = index::ImageIndex::open(idx);
  const std::vector<float> query = embeddings_by_path(idx).at(images + "/img-042.png");
  const auto hits = updated.search(query.data(), 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].path, images + "/img-042.png");

  // An export (written chunk by chunk) holds the live rows only, in id order.
  EXPECT_EQ(index::export_index(idx, dir.file("export")), updated.size());
  const std::vector<std::string> lines = util::split_lines(util::read_file(dir.file("export/metadata.jsonl")));
  ASSERT_EQ(static_cast<int64_t>(lines.size()), updated.size() + 1);  // and the final newline
  for (int64_t id = 0; id < updated.size(); ++id)
    ASSERT_EQ(nlohmann::json::parse(lines[static_cast<size_t>(id)])["path"], updated.record(id).path) << "row " << id;
}

TEST(IndexStorage, AChunkLeftMostlyDroppedIsCompactedIntoANewOne) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 30, 7);
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(10));
  const index::Manifest before = index::read_manifest(idx);
  ASSERT_EQ(before.chunks.size(), 3u);
  const auto rows_before = embeddings_by_path(idx);
  // 6 of the 10 rows of the middle chunk go: its 4 others are moved to a new chunk, its files
  // removed once no reader can use them (after the next generation).
  for (int i = 10; i < 16; ++i) fs::remove(images + "/img-0" + std::to_string(i) + ".png");
  index::update_index(test::tiny_model(), identity(), idx, options(10));
  const index::Manifest after = index::read_manifest(idx);
  ASSERT_EQ(after.chunks.size(), 3u);
  EXPECT_EQ(after.chunks[0].embeddings, before.chunks[0].embeddings);
  EXPECT_EQ(after.chunks[1].embeddings, before.chunks[2].embeddings);
  EXPECT_EQ(after.chunks[2].rows, 4);
  EXPECT_EQ(after.count, 24);
  EXPECT_EQ(after.previous_files,
            (std::vector<std::string>{before.chunks[1].embeddings, before.chunks[1].metadata}));
  EXPECT_TRUE(fs::exists(idx + "/" + before.chunks[1].embeddings)) << "kept for readers of generation 1";
  index::update_index(test::tiny_model(), identity(), idx, options(10));
  EXPECT_FALSE(fs::exists(idx + "/" + before.chunks[1].embeddings)) << "unused after generation 3";
  // The moved rows are copied bit for bit, none recomputed.
  EXPECT_EQ(expect_same_rows(embeddings_by_path(idx), rows_before), 24u);
}

// Re-ranking maps the chunks for random access and asks for the candidates' pages ahead: the rows
// it reads that way, one at a time across dropped rows and chunk borders, are the rows a pass reads.
TEST(IndexStorage, RowsMappedForRandomAccessReadTheSameAsAPass) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 30, 5);
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(10));
  fs::remove(images + "/img-012.png");  // two dropped rows in the middle chunk, too few to compact it
  fs::remove(images + "/img-017.png");
  index::update_index(test::tiny_model(), identity(), idx, options(10));
  const index::Manifest m = index::read_manifest(idx);
  ASSERT_EQ(m.count, 28);
  ASSERT_EQ(m.chunks.at(1).dropped.size(), 2u);
  const std::vector<float> pass = index::read_generation_embeddings(idx, m);
  const index::GenerationRows rows = index::GenerationRows::open(idx, m.chunks, m.dim, nullptr, index::RowAccess::kRandom);
  ASSERT_EQ(rows.count(), m.count);
  std::vector<int64_t> ids = {-1, m.count, int64_t{1} << 40};  // ignored, not an error
  for (int64_t id = m.count - 1; id >= 0; id -= 3) ids.push_back(id);
  EXPECT_NO_THROW(rows.will_need(ids));
  std::vector<float> row(static_cast<size_t>(m.dim));
  for (int64_t id = m.count - 1; id >= 0; --id) {
    rows.read(id, 1, row.data());
    ASSERT_TRUE(std::equal(row.begin(), row.end(), pass.begin() + id * m.dim)) << "row " << id;
  }
}

// An opened index reads a row's metadata when asked for; small chunk files (these: 10 rows) are held
// in memory, so removing them (as two later updates do) takes nothing from an open reader.
TEST(IndexStorage, AnOpenReaderKeepsItsMetadataAfterTheFilesAreRemoved) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 25, 3);
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(10));
  const index::Manifest m = index::read_manifest(idx);
  std::vector<index::FileRecord> expected;
  for (const auto& c : m.chunks)
    for (auto& r : index::read_live_chunk_records(idx, c)) expected.push_back(std::move(r));
  const index::ImageIndex reader = index::ImageIndex::open(idx);
  for (const auto& c : m.chunks) fs::remove(idx + "/" + c.metadata);
  ASSERT_EQ(reader.size(), static_cast<int64_t>(expected.size()));
  for (int64_t id = 0; id < reader.size(); ++id) {
    const index::FileRecord r = reader.record(id);
    EXPECT_EQ(r.path, expected[id].path);
    EXPECT_EQ(r.size, expected[id].size);
    EXPECT_EQ(r.mtime_ns, expected[id].mtime_ns);
    EXPECT_EQ(r.sha256, expected[id].sha256);
  }
  EXPECT_THROW(reader.record(reader.size()), Error);
  EXPECT_THROW(reader.record(-1), Error);
}

// A chunk's metadata file damaged or swapped: the open refuses it naming the file (and the line),
// quickly, and sizes nothing from it.
TEST(IndexStorage, DamagedChunkMetadataIsRefusedAtOpenByName) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 4, 21);
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(2));
  const index::Manifest m = index::read_manifest(idx);
  const std::string file = idx + "/" + m.chunks.at(0).metadata;
  const std::string good = util::read_file(file);
  const std::vector<std::string> lines = util::split_lines(good);  // 2 rows and a final empty piece
  ASSERT_EQ(lines.size(), 3u);
  auto expect_refused = [&](const std::string& expected) {
    try {
      index::ImageIndex::open(idx);
      ADD_FAILURE() << "accepted; expected: " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  auto damage = [&](const std::string& text, const std::string& expected) {
    util::write_file_atomic(file, text);
    expect_refused(expected);
  };
  damage(lines[0] + "\n" + lines[1].substr(0, lines[1].size() / 2) + "\n", file + ":2: not valid JSON");
  damage(lines[0] + "\n" + std::string("\0\xff\xfe{", 4) + "\n", file + ":2: not valid JSON");
  damage(lines[0] + "\n{\"path\": \"/x\", \"size\": 1, \"mtime_ns\": 2}\n", file + ":2: missing field \"sha256\"");
  damage(lines[0] + "\n{\"path\": 7, \"size\": 1, \"mtime_ns\": 2, \"sha256\": \"\"}\n",
         file + ":2: field \"path\" has the wrong type");
  damage(lines[0] + "\n", file + ": 1 rows, the manifest says 2");
  damage(good + lines[0] + "\n", file + ": more than the 2 rows the manifest says");
  damage(good + std::string(200000, ' '), file + ": 200");  // over (rows + 1) × the longest line
  // A FIFO or a folder in the file's place: refused at once (a FIFO would block a plain open).
  fs::remove(file);
  ASSERT_EQ(::mkfifo(file.c_str(), 0600), 0);
  expect_refused(file + ": not a regular file");
  fs::remove(file);
  fs::create_directory(file);
  expect_refused(file + ": not a regular file");
  fs::remove(file);
  util::write_file_atomic(file, good);
  EXPECT_EQ(index::ImageIndex::open(idx).size(), 4);
}

TEST(IndexStorage, Float16StorageKeepsTheRoundedEmbeddingsAndSearchesThem) {
  TempDir dir;
  const std::string images = dir.file("images");
  write_images(images, 24, 11);
  const std::string f32 = dir.file("f32"), f16 = dir.file("f16");
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), f32, options(10));
  index::BuildOptions half = options(10);
  half.storage = index::Storage::kF16;
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), f16, half);
  const index::Manifest m = index::read_manifest(f16);
  EXPECT_EQ(m.storage, index::Storage::kF16);
  const util::NpyArray chunk = util::read_npy(f16 + "/" + m.chunks.at(0).embeddings);
  EXPECT_EQ(chunk.dtype, "<f2");
  // Each stored value is the float32 embedding rounded to the nearest half (NumPy's astype rule).
  const auto full = embeddings_by_path(f32), rounded = embeddings_by_path(f16);
  ASSERT_EQ(full.size(), rounded.size());
  for (const auto& [path, row] : full)
    for (size_t j = 0; j < row.size(); ++j)
      ASSERT_EQ(rounded.at(path)[j], util::half_to_float(util::float_to_half(row[j]))) << path << " [" << j << "]";
  // An update keeps the index's storage; searches answer from the stored (rounded) rows.
  write_images(images + "/more", 3, 99);
  index::update_index(test::tiny_model(), identity(), f16, options(10));
  const index::Manifest m2 = index::read_manifest(f16);
  EXPECT_EQ(util::read_npy(f16 + "/" + m2.chunks.back().embeddings).dtype, "<f2");
  const index::ImageIndex idx = index::ImageIndex::open(f16);
  const std::vector<float> q = embeddings_by_path(f16).at(images + "/more/img-001.png");
  const auto hits = idx.search(q.data(), 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].path, images + "/more/img-001.png");
  EXPECT_NEAR(hits[0].score, 1.0, 1e-3);
}

TEST(IndexStorage, AnIndexOfFormatVersionOneIsReadAndUpdated) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 12, 21);
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(100));
  // Rewrite it as version 1 wrote it: one embeddings and one metadata file named by generation.
  const index::Manifest m = index::read_manifest(idx);
  ASSERT_EQ(m.chunks.size(), 1u);
  fs::rename(idx + "/" + m.chunks[0].embeddings, idx + "/embeddings-1.npy");
  fs::rename(idx + "/" + m.chunks[0].metadata, idx + "/metadata-1.jsonl");
  nlohmann::json j = nlohmann::json::parse(util::read_file(idx + "/manifest.json"));
  j["version"] = 1;
  j.erase("chunks");
  j.erase("storage");
  j.erase("previous_files");
  j["files"]["embeddings"] = "embeddings-1.npy";
  j["files"]["metadata"] = "metadata-1.jsonl";
  util::write_file_atomic(idx + "/manifest.json", j.dump(2));
  const auto v1 = embeddings_by_path(idx);
  EXPECT_EQ(v1.size(), 12u);

  write_images(images + "/new", 1, 500);
  const index::BuildReport r = index::update_index(test::tiny_model(), identity(), idx, options(100));
  EXPECT_EQ(r.embedded, 1);
  const index::Manifest m2 = index::read_manifest(idx);
  ASSERT_EQ(m2.chunks.size(), 2u);
  EXPECT_EQ(m2.chunks[0].embeddings, "embeddings-1.npy") << "the version 1 file is kept as a chunk";
  auto v2 = embeddings_by_path(idx);
  EXPECT_EQ(v2.size(), 13u);
  v2.erase(images + "/new/img-000.png");
  EXPECT_EQ(v2, v1);
}

TEST(IndexStorage, ManifestChunkListsAreChecked) {
  TempDir dir;
  const std::string images = dir.file("images"), idx = dir.file("idx");
  write_images(images, 4, 31);
  index::build_index(test::tiny_model(), identity(), index::source_from_argument(images, ""), idx, options(2));
  const std::string path = idx + "/manifest.json";
  const std::string good = util::read_file(path);
  auto expect_refused = [&](const std::function<void(nlohmann::json&)>& damage, const std::string& expected) {
    nlohmann::json j = nlohmann::json::parse(good);
    damage(j);
    util::write_file_atomic(path, j.dump());
    try {
      index::read_manifest(idx);
      ADD_FAILURE() << "accepted: " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  expect_refused([](auto& j) { j["chunks"][0]["embeddings"] = "../../etc/passwd"; }, "not a file name inside");
  expect_refused([](auto& j) { j["chunks"][0]["dropped"] = {1, 0}; }, "increasing row numbers");
  expect_refused([](auto& j) { j["chunks"][0]["dropped"] = {2}; }, "increasing row numbers in 0..1");
  expect_refused([](auto& j) { j["chunks"][0]["rows"] = 0; }, "rows 0");
  expect_refused([](auto& j) { j["count"] = 5; }, "the chunks hold 4 rows");
  expect_refused([](auto& j) { j["storage"] = "f8"; }, "storage \"f8\"");
  expect_refused([](auto& j) { j["previous_files"] = {"a/b"}; }, "previous_files[0]");
  util::write_file_atomic(path, good);
  // A chunk file whose row count differs from the manifest's: named when it is read.
  const index::Manifest m = index::read_manifest(idx);
  std::vector<float> three(3 * 64, 0.125f);
  util::write_npy(idx + "/" + m.chunks[1].embeddings, "<f4", {3, 64}, three.data(), three.size() * sizeof(float));
  try {
    index::ImageIndex::open(idx, {false, 5});
    ADD_FAILURE() << "a chunk of 3 rows listed as 2 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(m.chunks[1].embeddings), std::string::npos) << e.what();
  }
  // A manifest claiming 2^35 rows in a chunk whose metadata holds 2: nothing is sized from the
  // claim (the line starts are bounded by the files' bytes); the metadata file is named.
  nlohmann::json huge = nlohmann::json::parse(good);
  const int64_t claimed = int64_t{1} << 35;
  huge["chunks"][0]["rows"] = claimed;
  huge["count"] = claimed + 2;
  util::write_file_atomic(path, huge.dump());
  try {
    index::ImageIndex::open(idx);
    ADD_FAILURE() << "a chunk claiming 2^35 rows was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(m.chunks[0].metadata + ": 2 rows, the manifest says 34359738368"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clip
