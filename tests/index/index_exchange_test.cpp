// `clip index import` (clip-retrieval img_emb chunks, an export) and `clip index export`, on
// synthetic vectors: an import searches exactly as an index built from the same vectors, and every
// mismatch of counts, dimensions or dtypes is refused naming the file (docs/search.md).
#include <gtest/gtest.h>
#include <malloc.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "index/manifest.h"
#include "synthetic_index.h"
#include "temp_dir.h"
#include "util/file_io.h"
#include "util/npy.h"
#include "util/strings.h"

namespace clip {
namespace {

using test::TempDir;

constexpr int kExDim = 32;
const index::ModelIdentity kModel{"/synthetic/model.safetensors", "{}", "fp32"};

// rows [begin, end) of a row-major matrix as a float32 .npy.
void write_rows(const std::string& path, const std::vector<float>& rows, int64_t begin, int64_t end) {
  util::write_npy(path, "<f4", {end - begin, kExDim}, rows.data() + begin * kExDim,
                  static_cast<size_t>(end - begin) * kExDim * sizeof(float));
}

// clip-retrieval's layout: FOLDER/img_emb/img_emb_N.npy of `per_chunk` rows, and a text list.
void write_chunks(const TempDir& dir, const std::vector<float>& rows, int64_t per_chunk) {
  const int64_t n = static_cast<int64_t>(rows.size()) / kExDim;
  std::filesystem::create_directories(dir.file("emb/img_emb"));
  std::string list;
  for (int64_t begin = 0, c = 0; begin < n; begin += per_chunk, ++c)
    write_rows(dir.file("emb/img_emb/img_emb_" + std::to_string(c) + ".npy"), rows, begin,
               std::min(n, begin + per_chunk));
  for (const auto& r : test::synthetic_records(n)) list += r.path + "\n";
  dir.write("paths.txt", list);
}

void expect_same_results(const index::ImageIndex& a, const index::ImageIndex& b, const std::vector<float>& queries) {
  for (size_t q = 0; q < queries.size() / kExDim; ++q) {
    const auto ha = a.search(&queries[q * kExDim], 10), hb = b.search(&queries[q * kExDim], 10);
    ASSERT_EQ(ha.size(), hb.size());
    for (size_t i = 0; i < ha.size(); ++i) {
      EXPECT_EQ(ha[i].id, hb[i].id) << "query " << q << " rank " << i;
      EXPECT_EQ(ha[i].score, hb[i].score) << "query " << q << " rank " << i;
      EXPECT_EQ(ha[i].path, hb[i].path);
    }
  }
}

TEST(IndexExchange, ImportOfClipRetrievalChunksSearchesAsABuiltIndex) {
  const std::vector<float> all = test::clustered_vectors(5050, kExDim, 50, 3);
  const std::vector<float> rows(all.begin(), all.begin() + 5000 * kExDim),
      queries(all.begin() + 5000 * kExDim, all.end());
  TempDir dir;
  write_chunks(dir, rows, 1200);  // 5 chunks, the last one shorter
  for (const char* type : {"flat", "ivfpq"}) {
    index::IndexParams params;
    params.kind = index::index_kind_from_name(type);
    params.nlist = 32;
    params.pq_m = 8;
    test::publish_synthetic_index(dir.file(std::string("built-") + type), params, kExDim, rows);
    index::ImportOptions o;
    o.params = params;
    o.embeddings = dir.file("emb");
    o.paths = dir.file("paths.txt");
    const index::BuildReport r = index::import_index(kModel, kExDim, o, dir.file(std::string("imported-") + type));
    EXPECT_EQ(r.indexed, 5000);
    const index::ImageIndex built = index::ImageIndex::open(dir.file(std::string("built-") + type));
    const index::ImageIndex imported = index::ImageIndex::open(dir.file(std::string("imported-") + type));
    EXPECT_EQ(imported.manifest().source.kind, "import");
    EXPECT_EQ(imported.record(4999).path, "/synthetic/4999.jpg");
    expect_same_results(built, imported, queries);
  }
  // An imported index has no source to re-list.
  EXPECT_EQ(index::read_manifest(dir.file("imported-flat")).count, 5000);
}

TEST(IndexExchange, ExportThenImportRoundTrips) {
  const std::vector<float> all = test::clustered_vectors(1010, kExDim, 10, 4);
  const std::vector<float> rows(all.begin(), all.begin() + 1000 * kExDim),
      queries(all.begin() + 1000 * kExDim, all.end());
  TempDir dir;
  index::IndexParams params;
  test::publish_synthetic_index(dir.file("a"), params, kExDim, rows);
  EXPECT_EQ(index::export_index(dir.file("a"), dir.file("out")), 1000);
  const util::NpyArray e = util::read_npy(dir.file("out/embeddings.npy"));
  ASSERT_EQ(e.dtype, "<f4");
  ASSERT_EQ(e.shape, (std::vector<int64_t>{1000, kExDim}));
  EXPECT_EQ(e.data, std::string(reinterpret_cast<const char*>(rows.data()), rows.size() * sizeof(float)));
  const std::vector<std::string> lines = util::split_lines(util::read_file(dir.file("out/metadata.jsonl")));
  ASSERT_GE(lines.size(), 1000u);
  EXPECT_EQ(nlohmann::json::parse(lines[7])["path"], "/synthetic/7.jpg");
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("out")))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos);  // nothing left behind

  index::ImportOptions o;
  o.embeddings = dir.file("out/embeddings.npy");
  o.paths = dir.file("out/metadata.jsonl");
  index::import_index(kModel, kExDim, o, dir.file("b"));
  expect_same_results(index::ImageIndex::open(dir.file("a")), index::ImageIndex::open(dir.file("b")), queries);
  EXPECT_EQ(index::ImageIndex::open(dir.file("b")).record(3).sha256,
            index::ImageIndex::open(dir.file("a")).record(3).sha256);
}

TEST(IndexExchange, Float16ChunksAreConvertedAndNormalized) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("emb"));
  // 0x3C00 = 1.0, 0x4000 = 2.0, 0xBC00 = -1.0 in IEEE half precision.
  std::vector<uint16_t> halves(2 * 4, 0);
  halves[0] = 0x4000;                      // row 0: (2, 0, 0, 0) -> (1, 0, 0, 0)
  halves[5] = 0x3C00, halves[6] = 0xBC00;  // row 1: (0, 1, -1, 0) -> (0, 0.7071, -0.7071, 0)
  util::write_npy(dir.file("emb/img_emb_0.npy"), "<f2", {2, 4}, halves.data(), halves.size() * 2);
  dir.write("paths.txt", "a.jpg\nb.jpg\n");
  index::ImportOptions o;
  o.embeddings = dir.file("emb");
  o.paths = dir.file("paths.txt");
  index::import_index(kModel, 4, o, dir.file("idx"));
  const index::Manifest m = index::read_manifest(dir.file("idx"));
  const std::vector<float> e = index::read_generation_embeddings(dir.file("idx"), m);
  const float* v = e.data();
  EXPECT_FLOAT_EQ(v[0], 1.0f);
  EXPECT_FLOAT_EQ(v[5], static_cast<float>(1 / std::sqrt(2.0)));
  EXPECT_FLOAT_EQ(v[6], static_cast<float>(-1 / std::sqrt(2.0)));
}

// A "Name:   123 kB" line of /proc/self/status, in KiB (-1 if absent).
int64_t proc_status_kib(const std::string& name) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(name + ":", 0) == 0) return std::stoll(line.substr(name.size() + 1));
  return -1;
}

// An import streams: the rows go from the chunks to the index's embeddings file a block at a time,
// and the IVF-PQ index is trained on a sample and filled from a memory map whose pages are
// released as they are added. Importing 200k × 512 float32 rows (390 MiB; ViT-B/32's width, 64
// bytes a row) must raise the peak resident size by far less than the rows' size; holding them
// (as imports did) costs at least that much.
TEST(IndexExchange, ImportOfAnIvfPqIndexTakesMemoryOfTheIndexNotOfTheRows) {
  TempDir dir;
  constexpr int kDim = 512;
  constexpr int64_t kRows = 200000, kPerChunk = 50000;
  std::filesystem::create_directories(dir.file("emb/img_emb"));
  {
    const std::vector<float> rows = test::clustered_vectors(kPerChunk, kDim, 200, 5);
    for (int c = 0; c < kRows / kPerChunk; ++c)  // the same rows in each chunk: the memory is the test
      util::write_npy(dir.file("emb/img_emb/img_emb_" + std::to_string(c) + ".npy"), "<f4", {kPerChunk, kDim},
                      rows.data(), rows.size() * sizeof(float));
    std::string list;
    for (int64_t i = 0; i < kRows; ++i) list += std::to_string(i) + ".jpg\n";
    dir.write("paths.txt", list);
  }
  index::ImportOptions o;
  o.embeddings = dir.file("emb");
  o.paths = dir.file("paths.txt");
  o.params.kind = index::IndexKind::kIvfPq;
  o.params.nlist = 64;
  o.params.pq_m = 64;
  o.params.train_sample = 10000;
  // The peak resident size is reset to the current one first (/proc/self/clear_refs, "5"), so the
  // tests run before this one in the same process do not hide the import's own peak.
  const int64_t before = proc_status_kib("VmRSS");
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  index::import_index(kModel, kDim, o, dir.file("idx"));
  const int64_t growth = (proc_status_kib("VmHWM") - before) / 1024;
  const int64_t rows_mib = kRows * kDim * 4 / (1 << 20);
  std::printf("import of %lld x %d float32 (%lld MiB) into IVF-PQ: peak resident size +%lld MiB\n",
              static_cast<long long>(kRows), kDim, static_cast<long long>(rows_mib), static_cast<long long>(growth));
  EXPECT_LT(growth, rows_mib / 3) << "MiB of peak memory growth";
  // What was published is the whole collection, searchable, rows normalized in order.
  const index::ImageIndex idx = index::ImageIndex::open(dir.file("idx"));
  EXPECT_EQ(idx.size(), kRows);
  const std::vector<float> e = index::read_generation_embeddings(dir.file("idx"), index::read_manifest(dir.file("idx")));
  ASSERT_EQ(e.size(), static_cast<size_t>(kRows * kDim));
  const float* v = e.data();
  for (int64_t row : {int64_t{0}, kPerChunk + 7, kRows - 1}) {
    double norm = 0;
    for (int j = 0; j < kDim; ++j) norm += double(v[row * kDim + j]) * v[row * kDim + j];
    EXPECT_NEAR(norm, 1.0, 1e-5) << "row " << row;
  }
  EXPECT_EQ(std::memcmp(v, v + kPerChunk * kDim, kDim * sizeof(float)), 0) << "chunk 1 starts as chunk 0";
}

// An import source of `rows` 1-d rows (all 0.5) in one clip-retrieval chunk, and the path list
// `folder`<i>.jpg: large in rows and paths, small in embeddings.
void write_one_dimensional_import(const TempDir& dir, int64_t rows, const std::string& folder) {
  std::filesystem::create_directories(dir.file("emb"));
  const std::vector<float> values(static_cast<size_t>(rows), 0.5f);
  util::write_npy(dir.file("emb/img_emb_0.npy"), "<f4", {rows, 1}, values.data(), values.size() * sizeof(float));
  std::ofstream list(dir.file("paths.txt"));
  for (int64_t i = 0; i < rows; ++i) list << folder << i << ".jpg\n";
}

// The path list streams too: it is checked in one pass and handed to the chunks a chunk at a time
// (131,072 rows) in a second, never held whole. 2M paths of ~90 bytes (a 172 MiB list; 1-d rows,
// so the index is small) must raise the peak resident size by less than the list's size: one
// chunk's records and metadata text, whatever the list's length, measured +78 MiB; holding the
// list's text, its lines and the records (as imports did) costs about three times the list.
TEST(IndexExchange, ImportDoesNotHoldThePathList) {
  TempDir dir;
  constexpr int kDim = 1;
  constexpr int64_t kRows = 2000000;
  const std::string folder = "/photos/" + std::string(70, 'p') + "/";
  write_one_dimensional_import(dir, kRows, folder);
  const int64_t list_mib = static_cast<int64_t>(std::filesystem::file_size(dir.file("paths.txt"))) >> 20;
  index::ImportOptions o;
  o.embeddings = dir.file("emb");
  o.paths = dir.file("paths.txt");
  const int64_t before = proc_status_kib("VmRSS");
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  index::import_index(kModel, kDim, o, dir.file("idx"));
  const int64_t growth = (proc_status_kib("VmHWM") - before) / 1024;
  std::printf("import of %lld rows with a %lld MiB path list: peak resident size +%lld MiB\n",
              static_cast<long long>(kRows), static_cast<long long>(list_mib), static_cast<long long>(growth));
  EXPECT_LT(growth, list_mib) << "MiB of peak memory growth";
  const index::ImageIndex idx = index::ImageIndex::open(dir.file("idx"));
  ASSERT_EQ(idx.size(), kRows);
  EXPECT_EQ(idx.record(kRows - 1).path, folder + std::to_string(kRows - 1) + ".jpg");
}

// An opened index reads its rows' metadata on demand: it keeps where each row's line starts (8 bytes
// a row), not the records (a path and a hash as strings, ~170 bytes a row here). 1M rows of ~90-byte
// paths (~140 MiB of metadata in chunks of 131,072 rows, each mapped): opening must grow the
// process's anonymous memory by less than a quarter of the metadata's size (the line starts, 8 MB,
// and the flat FAISS index, 4 MB; the records took more than the metadata's size). The chunks stay
// readable through their mappings after the files are removed (as by two later updates).
TEST(IndexExchange, AnOpenedIndexReadsItsMetadataOnDemand) {
  TempDir dir;
  constexpr int kDim = 1;
  constexpr int64_t kRows = 1000000;
  const std::string folder = "/photos/" + std::string(70, 'p') + "/";
  write_one_dimensional_import(dir, kRows, folder);
  index::ImportOptions o;
  o.embeddings = dir.file("emb");
  o.paths = dir.file("paths.txt");
  index::import_index(kModel, kDim, o, dir.file("idx"));
  const index::Manifest m = index::read_manifest(dir.file("idx"));
  int64_t metadata_kib = 0;
  for (const auto& c : m.chunks)
    metadata_kib += static_cast<int64_t>(std::filesystem::file_size(dir.file("idx/" + c.metadata))) / 1024;
  ::malloc_trim(0);  // the import's freed memory goes back to the system, not into the open
  const int64_t before = proc_status_kib("RssAnon");
  const index::ImageIndex idx = index::ImageIndex::open(dir.file("idx"));
  const int64_t growth = proc_status_kib("RssAnon") - before;
  std::printf("opening %lld rows with %lld MiB of metadata: anonymous memory +%lld MiB\n",
              static_cast<long long>(kRows), static_cast<long long>(metadata_kib / 1024),
              static_cast<long long>(growth / 1024));
  EXPECT_LT(growth, metadata_kib / 4) << "KiB of anonymous memory growth";
  for (const auto& c : m.chunks) std::filesystem::remove(dir.file("idx/" + c.metadata));
  ASSERT_EQ(idx.size(), kRows);
  for (const int64_t id : {int64_t{0}, int64_t{131071}, int64_t{131072}, kRows - 1}) {
    const index::FileRecord r = idx.record(id);
    EXPECT_EQ(r.path, folder + std::to_string(id) + ".jpg");
    EXPECT_EQ(r.sha256, "");
  }
  const float query = 1.0f;
  const std::vector<index::Hit> hits = idx.search(&query, 3);
  ASSERT_EQ(hits.size(), 3u);
  for (const index::Hit& h : hits) EXPECT_EQ(h.path, folder + std::to_string(h.id) + ".jpg");
}

// The error's message must name `file`; no manifest and no embeddings file (final or temporary)
// may be left: an import writes its rows as it reads them, so a bad row in a later chunk fails it
// after earlier rows were written.
void expect_refused(const index::ImportOptions& o, const std::string& out, const std::string& file,
                    const std::string& words) {
  try {
    index::import_index(kModel, kExDim, o, out);
    FAIL() << "accepted; expected an error naming " << file;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
  EXPECT_FALSE(util::file_exists(out + "/manifest.json"));
  std::error_code ec;
  if (std::filesystem::is_directory(out, ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(out)) {
      EXPECT_EQ(entry.path().filename().string().find("embeddings-"), std::string::npos) << entry.path();
    }
  }
}

TEST(IndexExchange, MismatchedCountsDimensionsAndDtypesAreRefused) {
  const std::vector<float> rows = test::clustered_vectors(300, kExDim, 5, 5);
  TempDir dir;
  write_chunks(dir, rows, 100);
  index::ImportOptions o;
  o.embeddings = dir.file("emb");
  o.paths = dir.file("paths.txt");
  const std::string out = dir.file("idx");
  const std::string chunk1 = dir.file("emb/img_emb/img_emb_1.npy");

  dir.write("short.txt", util::read_file(dir.file("paths.txt")).substr(20));  // one path fewer
  index::ImportOptions short_list = o;
  short_list.paths = dir.file("short.txt");
  expect_refused(short_list, out, dir.file("short.txt"), "299 paths, the embeddings hold 300 rows");

  std::vector<float> wide(100 * (kExDim + 1), 0.5f);
  util::write_npy(chunk1, "<f4", {100, kExDim + 1}, wide.data(), wide.size() * sizeof(float));
  expect_refused(o, out, chunk1, "expected [N, 32]");

  std::vector<int32_t> ints(100 * kExDim, 1);
  util::write_npy(chunk1, "<i4", {100, kExDim}, ints.data(), ints.size() * sizeof(int32_t));
  expect_refused(o, out, chunk1, "dtype <i4");

  // A header claiming more rows than the file holds: refused before anything is allocated.
  std::string npy = util::to_npy("<f4", {1000000000, kExDim}, rows.data(), 100 * kExDim * sizeof(float));
  util::write_file_atomic(chunk1, npy);
  expect_refused(o, out, chunk1, "truncated");

  std::vector<float> zero(100 * kExDim, 0.0f);
  util::write_npy(chunk1, "<f4", {100, kExDim}, zero.data(), zero.size() * sizeof(float));
  expect_refused(o, out, chunk1, "row 0 is zero");

  // A NaN deep in the last chunk: chunks 0 and 1 are already written when it is found.
  write_rows(chunk1, rows, 100, 200);
  std::vector<float> poisoned(rows.begin() + 200 * kExDim, rows.end());
  poisoned[57 * kExDim + 3] = std::nanf("");
  const std::string chunk2 = dir.file("emb/img_emb/img_emb_2.npy");
  util::write_npy(chunk2, "<f4", {100, kExDim}, poisoned.data(), poisoned.size() * sizeof(float));
  expect_refused(o, out, chunk2, "row 57 is zero or not finite");
  write_rows(chunk2, rows, 200, 300);

  std::filesystem::remove(chunk1);  // a gap between img_emb_0 and img_emb_2
  expect_refused(o, out, "img_emb_1.npy", "missing");

  // A path list line that is not JSON.
  write_rows(chunk1, rows, 100, 200);
  dir.write("list.jsonl", "{\"path\": \"a\"}\nnot json\n");
  index::ImportOptions bad_json = o;
  bad_json.paths = dir.file("list.jsonl");
  expect_refused(bad_json, out, dir.file("list.jsonl") + ":2", "not valid JSON");
  // A line longer than any path can be: refused by line, without reading it whole.
  dir.write("long.txt", "a.jpg\n" + std::string(200000, 'x') + "\n");
  index::ImportOptions long_line = o;
  long_line.paths = dir.file("long.txt");
  expect_refused(long_line, out, dir.file("long.txt") + ":2", "a line longer than");
  // An empty line inside the list.
  dir.write("gap.txt", "a.jpg\n\nb.jpg\n");
  index::ImportOptions gap = o;
  gap.paths = dir.file("gap.txt");
  expect_refused(gap, out, dir.file("gap.txt") + ":2", "empty line");
  EXPECT_NO_THROW(index::import_index(kModel, kExDim, o, out));  // the files as they should be
}

}  // namespace
}  // namespace clip
