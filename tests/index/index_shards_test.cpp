// WebDataset tar shards as an index source: the same embeddings as the images as files, search
// equal to brute force, update (new, rewritten, unchanged, deleted shards), damaged shards and
// members skipped with reasons, resuming an interrupted build, the manifest's shard list.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "index/file_hash.h"
#include "search_check.h"
#include "tar_writer.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace fs = std::filesystem;
using clip::index::BuildOptions;
using clip::index::ImageIndex;

namespace {

using clip::test::image_file;
using clip::test::model_path;
using clip::test::quiet_options;
using clip::test::TempDir;
using clip::test::text_query;
using clip::test::tiny_model;
using Members = std::vector<std::pair<std::string, std::string>>;

std::string bytes_of(const std::string& fixture) { return clip::util::read_file(image_file(fixture)); }

clip::index::ModelIdentity identity() {
  return clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32);
}

// Row path -> embedding, from the index folder's files.
std::map<std::string, std::vector<float>> embeddings_by_path(const std::string& index_dir) {
  const ImageIndex index = ImageIndex::open(index_dir);
  const std::vector<float> a = clip::index::read_generation_embeddings(index_dir, index.manifest());
  const float* rows = a.data();
  std::map<std::string, std::vector<float>> out;
  for (int64_t i = 0; i < index.size(); ++i)
    out[index.record(i).path].assign(rows + i * index.dim(), rows + (i + 1) * index.dim());
  return out;
}

std::vector<std::string> sorted_paths(const ImageIndex& index) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < index.size(); ++i) out.push_back(index.record(i).path);
  std::sort(out.begin(), out.end());
  return out;
}

// Search results against the Embedder run on the original files (row path -> fixture file).
void expect_matches_brute_force(const ImageIndex& index, const std::map<std::string, std::string>& files,
                                const torch::Tensor& query, int k) {
  std::vector<std::string> rows, paths;
  for (const auto& [row, file] : files) {
    rows.push_back(row);
    paths.push_back(file);
  }
  clip::test::expect_matches_brute_force(index, rows, paths, query, k);
}

// Two shards of WebDataset samples (an image and a caption each) and the same images as files.
struct ShardCollection {
  TempDir tmp;
  std::string shards = tmp.path() + "/shards";
  std::string index = tmp.path() + "/index";
  std::string pattern = shards + "/{00000..00003}.tar";  // 00002 and 00003 come later
  std::map<std::string, std::string> files;              // row path -> fixture file with the same bytes
  ShardCollection() {
    fs::create_directories(shards);
    write_shard(0, {{"000", "astronaut_q95.jpg"}, {"001", "chelsea.png"}});
    write_shard(1, {{"002", "coffee_q90_444.jpg"}, {"003", "rocket.jpg"}, {"004", "webp_lossy.webp"}});
  }
  std::string shard(int n) const {
    char name[16];
    std::snprintf(name, sizeof name, "/%05d.tar", n);
    return shards + name;
  }
  // Writes shard n with (key, fixture) samples, each with a caption, and notes its rows in `files`.
  void write_shard(int n, const std::vector<std::pair<std::string, std::string>>& samples) {
    Members members;
    for (auto it = files.begin(); it != files.end();)
      it = it->first.rfind(shard(n) + "#", 0) == 0 ? files.erase(it) : std::next(it);
    for (const auto& [key, fixture] : samples) {
      const std::string member = key + fs::path(fixture).extension().string();
      members.push_back({member, bytes_of(fixture)});
      members.push_back({key + ".txt", "a caption"});
      files[shard(n) + "#" + member] = image_file(fixture);
    }
    clip::test::write_tar(shard(n), members);
  }
  clip::index::Source source() const { return clip::index::source_from_argument(pattern, ""); }
};

}  // namespace

TEST(IndexShards, BuildGivesTheEmbeddingsOfTheSameImagesAsFilesAndSearchesLikeBruteForce) {
  ShardCollection c;
  const auto source = c.source();
  EXPECT_EQ(source.kind, "shards");
  EXPECT_EQ(source.path, c.pattern);
  const auto report = clip::index::build_index(tiny_model(), identity(), source, c.index, quiet_options());
  EXPECT_EQ(report.indexed, 5);
  EXPECT_EQ(report.embedded, 5);
  ASSERT_EQ(report.skipped.size(), 2u);  // the two shards of the pattern that do not exist yet
  EXPECT_EQ(report.skipped[0].path, c.shard(2));
  EXPECT_NE(report.skipped[0].reason.find("no such shard"), std::string::npos) << report.skipped[0].reason;

  // The same images as a folder.
  const std::string folder = c.tmp.path() + "/files";
  fs::create_directories(folder);
  std::map<std::string, std::string> file_of_row;  // shard row -> file in the folder
  for (const auto& [row, fixture] : c.files) {
    const std::string to = folder + "/" + fs::path(fixture).filename().string();
    fs::copy_file(fixture, to);
    file_of_row[row] = to;
  }
  clip::index::build_index(tiny_model(), identity(), clip::index::source_from_argument(folder, ""),
                           c.tmp.path() + "/folder-index", quiet_options());
  const auto from_shards = embeddings_by_path(c.index);
  const auto from_files = embeddings_by_path(c.tmp.path() + "/folder-index");
  ASSERT_EQ(from_shards.size(), c.files.size());
  for (const auto& [row, emb] : from_shards) {
    ASSERT_TRUE(file_of_row.count(row)) << row;
    const std::vector<float>& expected = from_files.at(file_of_row[row]);
    ASSERT_EQ(emb.size(), expected.size());
    for (size_t i = 0; i < emb.size(); ++i) ASSERT_NEAR(emb[i], expected[i], 1e-6) << row << " [" << i << "]";
  }

  // Rows: "<shard>#<member>", the member's size and hash, the shard's mtime; the bytes read back.
  const ImageIndex index = ImageIndex::open(c.index);
  std::vector<std::string> rows;
  for (const auto& [row, fixture] : c.files) rows.push_back(row);
  EXPECT_EQ(sorted_paths(index), rows);
  for (int64_t i = 0; i < index.size(); ++i) {
    const clip::index::FileRecord& r = index.record(i);
    const std::string bytes = clip::util::read_file(c.files.at(r.path));
    EXPECT_EQ(r.size, static_cast<int64_t>(bytes.size()));
    EXPECT_EQ(r.sha256, clip::index::sha256_hex(bytes));
    EXPECT_EQ(r.mtime_ns, clip::index::stat_file(r.path.substr(0, r.path.find('#'))).mtime_ns);
    EXPECT_EQ(index.read_image(i), bytes);
  }
  const auto& m = index.manifest();
  EXPECT_EQ(m.source.kind, "shards");
  ASSERT_EQ(m.shards.size(), 2u);
  EXPECT_EQ(m.shards[1].path, c.shard(1));
  EXPECT_EQ(m.shards[1].size, static_cast<int64_t>(fs::file_size(c.shard(1))));

  for (const char* text : {"a photo of a cat", "an astronaut", "a rocket"})
    expect_matches_brute_force(index, c.files, text_query(text), 3);
  const clip::Embedder e(tiny_model(), clip::Tokenizer(), 2);
  expect_matches_brute_force(index, c.files, e.embed_image_files({image_file("chelsea_q75.jpg")}), 5);
}

TEST(IndexShards, UpdateReadsNewAndRewrittenShardsOnlyAndDropsDeletedOnes) {
  ShardCollection c;
  clip::index::build_index(tiny_model(), identity(), c.source(), c.index, quiet_options());

  // A new shard matching the pattern.
  c.write_shard(2, {{"010", "horse_rgba.png"}, {"011", "astronaut_q95.jpg"}});  // 011: content already indexed
  auto report = clip::index::update_index(tiny_model(), identity(), c.index, quiet_options());
  EXPECT_EQ(report.generation, 2);
  EXPECT_EQ(report.embedded, 1);
  EXPECT_EQ(report.reused, 6);
  EXPECT_EQ(report.removed, 0);
  EXPECT_EQ(report.indexed, 7);
  ASSERT_EQ(report.skipped.size(), 1u);  // 00003.tar is still missing
  EXPECT_EQ(sorted_paths(ImageIndex::open(c.index)).size(), c.files.size());

  // Shard 1 rewritten: one member kept, one with other content, one gone, one new.
  c.write_shard(1, {{"002", "coffee_q90_444.jpg"}, {"003", "camera_gray.jpg"}, {"005", "motorcycle_200x500.png"}});
  fs::last_write_time(c.shard(1), fs::last_write_time(c.shard(1)) + std::chrono::seconds(5));
  report = clip::index::update_index(tiny_model(), identity(), c.index, quiet_options());
  EXPECT_EQ(report.embedded, 2);  // camera_gray and the motorcycle
  EXPECT_EQ(report.removed, 1);   // 004.webp
  EXPECT_EQ(report.indexed, 7);
  EXPECT_EQ(report.reused, 5);
  ImageIndex index = ImageIndex::open(c.index);
  std::vector<std::string> rows;
  for (const auto& [row, fixture] : c.files) rows.push_back(row);
  EXPECT_EQ(sorted_paths(index), rows);
  for (int64_t i = 0; i < index.size(); ++i)
    if (index.record(i).path.rfind(c.shard(1), 0) == 0) {
      EXPECT_EQ(index.record(i).mtime_ns, clip::index::stat_file(c.shard(1)).mtime_ns);
    }
  for (const char* text : {"a rocket", "a motorcycle", "a grey camera man"})
    expect_matches_brute_force(index, c.files, text_query(text), 4);

  // An unchanged shard (same size and mtime) is not read again: garbage with its size and mtime
  // keeps its rows.
  const auto mtime = fs::last_write_time(c.shard(0));
  clip::util::write_file_atomic(c.shard(0), std::string(fs::file_size(c.shard(0)), 'x'));
  fs::last_write_time(c.shard(0), mtime);
  report = clip::index::update_index(tiny_model(), identity(), c.index, quiet_options());
  EXPECT_EQ(report.embedded, 0);
  EXPECT_EQ(report.reused, 7);
  EXPECT_EQ(report.skipped.size(), 1u);

  // A deleted shard: its rows are dropped, and the pattern's name is reported missing.
  fs::remove(c.shard(0));
  report = clip::index::update_index(tiny_model(), identity(), c.index, quiet_options());
  EXPECT_EQ(report.removed, 2);
  EXPECT_EQ(report.indexed, 5);
  EXPECT_EQ(report.embedded, 0);
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_EQ(report.skipped[0].path, c.shard(0));
  index = ImageIndex::open(c.index);
  for (int64_t i = 0; i < index.size(); ++i) EXPECT_EQ(index.record(i).path.find(c.shard(0)), std::string::npos);
  EXPECT_EQ(index.manifest().shards.size(), 2u);
}

TEST(IndexShards, DamagedShardsAndMembersAreSkippedWithReasonsNeverFatal) {
  TempDir tmp;
  const std::string good = tmp.path() + "/0.tar", cut = tmp.path() + "/1.tar", garbage = tmp.path() + "/2.tar";
  clip::test::write_tar(good, {{"a.jpg", bytes_of("rocket.jpg")},
                               {"a.txt", "a rocket"},
                               {"b.txt", "a caption without an image"},
                               {"c.jpg", "not an image at all"},
                               {"d.png", bytes_of("chelsea.png")}});
  clip::test::write_tar(cut, {{"e.png", bytes_of("horse_rgba.png")}, {"f.jpg", bytes_of("astronaut_q95.jpg")}});
  const std::string whole = clip::util::read_file(cut);
  const size_t horse = bytes_of("horse_rgba.png").size();
  // Cut inside the second member: the first one is indexed.
  clip::util::write_file_atomic(cut, whole.substr(0, std::min(whole.size() - 1, horse + 4096)));
  clip::util::write_file_atomic(garbage, std::string(3000, 'x'));
  const std::string index_dir = tmp.path() + "/index";
  const auto report = clip::index::build_index(tiny_model(), identity(),
                                               clip::index::source_from_argument(tmp.path() + "/{0..2}.tar", ""),
                                               index_dir, quiet_options());
  EXPECT_EQ(report.indexed, 3);  // a.jpg, d.png, e.png
  std::map<std::string, std::string> reasons;
  for (const auto& s : report.skipped) reasons[s.path] = s.reason;
  ASSERT_EQ(reasons.size(), 4u);
  EXPECT_NE(reasons[good + "#b.txt"].find("no image member"), std::string::npos) << reasons[good + "#b.txt"];
  EXPECT_FALSE(reasons[good + "#c.jpg"].empty());
  EXPECT_NE(reasons[cut + "#f.jpg"].find("truncated"), std::string::npos) << reasons[cut + "#f.jpg"];
  EXPECT_FALSE(reasons[garbage].empty());
  const std::string listed =
      clip::util::read_file(index_dir + "/" + ImageIndex::open(index_dir).manifest().skipped_file);
  EXPECT_NE(listed.find(good + "#c.jpg"), std::string::npos);
  // Damaged shards are not remembered as read: the next update reads them again.
  EXPECT_EQ(ImageIndex::open(index_dir).manifest().shards.size(), 1u);
  const auto again = clip::index::update_index(tiny_model(), identity(), index_dir, quiet_options());
  EXPECT_EQ(again.embedded, 0);
  EXPECT_EQ(again.indexed, 3);
  EXPECT_EQ(again.skipped.size(), 4u);  // the good shard's skipped members carried over, the others found again
}

TEST(IndexShards, AnInterruptedBuildResumesWithoutEmbeddingFinishedMembersAgain) {
  ShardCollection c;
  BuildOptions failing = quiet_options();
  failing.params.kind = clip::index::IndexKind::kIvf;
  failing.params.nlist = 1000;  // fails when the FAISS index is trained, after every chunk was saved
  EXPECT_THROW(clip::index::build_index(tiny_model(), identity(), c.source(), c.index, failing), clip::Error);
  EXPECT_TRUE(fs::exists(c.index + "/work/chunk-000000.jsonl"));
  const auto report = clip::index::build_index(tiny_model(), identity(), c.source(), c.index, quiet_options());
  EXPECT_EQ(report.embedded, 0);
  EXPECT_EQ(report.reused, 5);
  expect_matches_brute_force(ImageIndex::open(c.index), c.files, text_query("a cat"), 3);
}

TEST(IndexShards, SourceArgumentsAndManifestsAreChecked) {
  ShardCollection c;
  auto message_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const clip::Error& e) {
      return e.what();
    }
    return "";
  };
  // A single shard, relative to the current folder.
  const fs::path cwd = fs::current_path();
  fs::current_path(c.shards);
  const auto single = clip::index::source_from_argument("00001.tar", "");
  fs::current_path(cwd);
  EXPECT_EQ(single.kind, "shards");
  EXPECT_EQ(single.path, c.shard(1));
  EXPECT_NE(message_of([&] { clip::index::source_from_argument(c.shards + "/x{7..9}.tar", ""); }).find("no such shard"),
            std::string::npos);
  EXPECT_NE(message_of([&] { clip::index::source_from_argument(c.shards + "/{0..1.tar", ""); }).find("'{'"),
            std::string::npos);
  EXPECT_NE(message_of([&] { clip::index::source_from_argument(c.shard(0), "path"); }).find("CSV column"),
            std::string::npos);

  clip::index::build_index(tiny_model(), identity(), c.source(), c.index, quiet_options());
  const std::string good = clip::util::read_file(c.index + "/manifest.json");
  auto expect_refused = [&](const std::string& from, const std::string& to, const std::string& mentions) {
    std::string bad = good;
    ASSERT_NE(bad.find(from), std::string::npos) << from;
    bad.replace(bad.find(from), from.size(), to);
    clip::util::write_file_atomic(c.index + "/manifest.json", bad);
    EXPECT_NE(message_of([&] { clip::index::read_manifest(c.index); }).find(mentions), std::string::npos) << to;
  };
  expect_refused("\"kind\": \"shards\"", "\"kind\": \"tar\"", "source kind");
  expect_refused("\"shards\": [", "\"shard_list\": [", "\"shards\"");
  expect_refused("\"path\": \"" + c.shard(0) + "\"", "\"path\": \"relative.tar\"", "absolute");
  clip::util::write_file_atomic(c.index + "/manifest.json", good);
  EXPECT_NO_THROW(clip::index::read_manifest(c.index));
}
