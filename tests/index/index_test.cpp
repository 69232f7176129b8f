// The embedding index: build, update (added, changed, touched, deleted files), resume after an
// interrupted build, and search results equal to a brute-force computation with the Embedder.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>
#include <tuple>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "index/file_hash.h"
#include "search_check.h"
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

// Files indexed as themselves: the row paths are the files.
void expect_matches_brute_force(const ImageIndex& index, const std::vector<std::string>& paths,
                                const torch::Tensor& query, int k) {
  clip::test::expect_matches_brute_force(index, paths, paths, query, k);
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// A folder of images: some valid ones (one in a subfolder), a broken one and a non-image file.
struct Collection {
  TempDir tmp;
  std::string images = tmp.path() + "/images";
  std::string index = tmp.path() + "/index";
  std::vector<std::string> valid;
  std::string broken;
  Collection() {
    fs::create_directories(images + "/sub");
    for (const char* name : {"astronaut_q95.jpg", "chelsea.png", "coffee_q90_444.jpg", "rocket.jpg", "horse_rgba.png"})
      valid.push_back(copy(name, images + "/" + name));
    valid.push_back(copy("webp_lossy.webp", images + "/sub/webp_lossy.webp"));
    broken = copy("png_truncated.png", images + "/sub/png_truncated.png");
    copy("not_an_image.txt", images + "/notes.txt");
    std::sort(valid.begin(), valid.end());
  }
  static std::string copy(const std::string& name, const std::string& to) {
    fs::copy_file(image_file(name), to, fs::copy_options::overwrite_existing);
    return fs::path(to).lexically_normal().string();
  }
  clip::index::ModelIdentity identity() const {
    return clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32);
  }
  clip::index::Source source() const { return clip::index::source_from_argument(images, ""); }
};

std::vector<std::string> indexed_paths(const ImageIndex& index) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < index.size(); ++i) out.push_back(index.record(i).path);
  return out;
}

}  // namespace

TEST(IndexBuild, IndexesValidImagesSkipsBrokenOnesAndSearchesLikeBruteForce) {
  Collection c;
  const auto report = clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, quiet_options());
  EXPECT_EQ(report.indexed, static_cast<int64_t>(c.valid.size()));
  EXPECT_EQ(report.embedded, static_cast<int64_t>(c.valid.size()));
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].path, c.broken);
  EXPECT_FALSE(report.skipped[0].reason.empty());

  const ImageIndex index = ImageIndex::open(c.index);
  EXPECT_EQ(sorted(indexed_paths(index)), c.valid);
  EXPECT_EQ(index.dim(), tiny_model().config().embed_dim);
  // The skipped file is listed, with its reason, in the index folder too.
  const std::string skipped = clip::util::read_file(c.index + "/" + index.manifest().skipped_file);
  EXPECT_NE(skipped.find(c.broken), std::string::npos);
  // No work folder or temporary file is left behind.
  EXPECT_FALSE(fs::exists(c.index + "/work"));
  for (const auto& e : fs::directory_iterator(c.index))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // The stored embeddings are the Embedder's, normalized.
  const clip::Embedder embedder(tiny_model(), clip::Tokenizer(), 2);
  const torch::Tensor expected = clip::normalize_rows(embedder.embed_image_files(indexed_paths(index)));
  std::vector<float> stored = clip::index::read_generation_embeddings(c.index, index.manifest());
  ASSERT_EQ(stored.size(), static_cast<size_t>(index.size() * index.dim()));
  const torch::Tensor got = torch::from_blob(stored.data(), {index.size(), index.dim()}, torch::kFloat).clone();
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5));

  for (const char* text : {"a photo of a cat", "an astronaut", "a rocket"})
    expect_matches_brute_force(index, c.valid, text_query(text), 4);
  expect_matches_brute_force(index, c.valid, text_query("a dog"), 100);  // k larger than the index
  const clip::Embedder e(tiny_model(), clip::Tokenizer(), 2);
  expect_matches_brute_force(index, c.valid, e.embed_image_files({image_file("chelsea_q75.jpg")}), 3);
}

TEST(IndexBuild, ApproximateIndexTypesFindTheExactResultsOnASmallCollection) {
  Collection c;
  for (const auto kind : {clip::index::IndexKind::kIvf, clip::index::IndexKind::kHnsw}) {
    const std::string out = c.index + "-" + clip::index::index_kind_name(kind);
    BuildOptions o = quiet_options();
    o.params.kind = kind;
    o.params.nlist = 2;
    o.params.nprobe = 2;  // every list: the search is exhaustive
    clip::index::build_index(tiny_model(), c.identity(), c.source(), out, o);
    const ImageIndex index = ImageIndex::open(out);
    EXPECT_EQ(index.manifest().params.kind, kind);
    expect_matches_brute_force(index, c.valid, text_query("a cat on a sofa"), 5);
  }
  BuildOptions o = quiet_options();
  o.params.kind = clip::index::IndexKind::kIvf;
  o.params.nlist = 100;  // more lists than images
  EXPECT_THROW(clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index + "-bad", o), clip::Error);
}

TEST(IndexUpdate, EmbedsNewAndChangedFilesKeepsTouchedOnesAndDropsDeletedOnes) {
  Collection c;
  clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, quiet_options());
  const std::string first_skipped = c.index + "/" + clip::index::read_manifest(c.index).skipped_file;

  // Added, changed (other content), touched (same content, new mtime), deleted.
  const std::string added = Collection::copy("motorcycle_200x500.png", c.images + "/sub/motorcycle.png");
  const std::string changed = c.images + "/rocket.jpg";
  Collection::copy("camera_gray.jpg", changed);
  const std::string touched = c.images + "/chelsea.png";
  fs::last_write_time(touched, fs::last_write_time(touched) + std::chrono::hours(1));
  const std::string deleted = c.images + "/coffee_q90_444.jpg";
  fs::remove(deleted);

  const auto report = clip::index::update_index(tiny_model(), c.identity(), c.index, quiet_options());
  EXPECT_EQ(report.generation, 2);
  EXPECT_EQ(report.embedded, 2);  // the added and the changed file only
  EXPECT_EQ(report.removed, 1);
  ASSERT_EQ(report.skipped.size(), 1u);  // the broken file is retried, and still broken
  std::vector<std::string> now = c.valid;
  now.erase(std::find(now.begin(), now.end(), fs::path(deleted).lexically_normal().string()));
  now.push_back(added);
  now = sorted(now);
  EXPECT_EQ(report.indexed, static_cast<int64_t>(now.size()));

  const ImageIndex index = ImageIndex::open(c.index);
  EXPECT_EQ(index.manifest().generation, 2);
  EXPECT_EQ(sorted(indexed_paths(index)), now);
  EXPECT_FALSE(fs::exists(first_skipped));  // the old generation's writer-only file is gone
  for (int64_t i = 0; i < index.size(); ++i)
    if (index.record(i).path == touched) {
      EXPECT_EQ(index.record(i).mtime_ns, clip::index::stat_file(touched).mtime_ns);
    }
  for (const char* text : {"a rocket", "a motorcycle", "a grey camera man"})
    expect_matches_brute_force(index, now, text_query(text), 3);

  // Nothing changed: nothing is embedded.
  const auto again = clip::index::update_index(tiny_model(), c.identity(), c.index, quiet_options());
  EXPECT_EQ(again.embedded, 0);
  EXPECT_EQ(again.reused, static_cast<int64_t>(now.size()));
}

TEST(IndexBuild, AnInterruptedBuildResumesWithoutEmbeddingFinishedFilesAgain) {
  Collection c;
  // A build that fails after embedding (IVF with more lists than images fails when the FAISS
  // index is trained, after every chunk was saved) leaves no index, only its work.
  BuildOptions failing = quiet_options();
  failing.params.kind = clip::index::IndexKind::kIvf;
  failing.params.nlist = 1000;
  EXPECT_THROW(clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, failing), clip::Error);
  EXPECT_FALSE(fs::exists(c.index + "/manifest.json"));
  EXPECT_THROW(ImageIndex::open(c.index), clip::Error);
  EXPECT_TRUE(fs::exists(c.index + "/work/chunk-000000.jsonl"));

  const auto report = clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, quiet_options());
  EXPECT_EQ(report.embedded, 0);
  EXPECT_EQ(report.reused, static_cast<int64_t>(c.valid.size()));
  expect_matches_brute_force(ImageIndex::open(c.index), c.valid, text_query("a cat"), 3);

  // A damaged chunk is recomputed, not trusted.
  const std::string other = c.tmp.path() + "/other";
  EXPECT_THROW(clip::index::build_index(tiny_model(), c.identity(), c.source(), other, failing), clip::Error);
  const std::string chunk0 = clip::util::read_file(other + "/work/chunk-000000.jsonl");
  const int64_t chunk0_rows = std::count(chunk0.begin(), chunk0.end(), '\n');
  ASSERT_GT(chunk0_rows, 0);
  ASSERT_LT(chunk0_rows, static_cast<int64_t>(c.valid.size()));
  clip::util::write_file_atomic(other + "/work/chunk-000000.npy", "not an npy file");
  const auto again = clip::index::build_index(tiny_model(), c.identity(), c.source(), other, quiet_options());
  EXPECT_EQ(again.embedded, chunk0_rows);  // the files of chunk 0 only
  expect_matches_brute_force(ImageIndex::open(other), c.valid, text_query("a cat"), 3);
}

TEST(IndexBuild, CsvSourceWithRelativePathsAndMissingFiles) {
  Collection c;
  const std::string csv = c.images + "/list.csv";
  std::ofstream(csv) << "title,filepath\n"
                        "\"a cat, sitting\",chelsea.png\r\n"
                        "rocket,./rocket.jpg\n"
                        "\n"
                        "gone,missing.jpg\n"
                        "\"web\"\"p\",sub/webp_lossy.webp\n";
  const auto source = clip::index::source_from_argument(csv, "");
  EXPECT_EQ(source.kind, "csv");
  const auto report = clip::index::build_index(tiny_model(), c.identity(), source, c.index, quiet_options());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].reason.find("list.csv:5"), std::string::npos) << report.skipped[0].reason;
  const std::vector<std::string> expected =
      sorted({c.images + "/chelsea.png", c.images + "/rocket.jpg", c.images + "/sub/webp_lossy.webp"});
  const ImageIndex index = ImageIndex::open(c.index);
  EXPECT_EQ(sorted(indexed_paths(index)), expected);
  expect_matches_brute_force(index, expected, text_query("a cat"), 3);

  std::ofstream(csv) << "title,url\nx,chelsea.png\n";
  EXPECT_THROW(clip::index::build_index(tiny_model(), c.identity(), clip::index::source_from_argument(csv, ""),
                                        c.tmp.path() + "/nocolumn", quiet_options()),
               clip::Error);
  std::ofstream(csv) << "path\n\"chelsea.png\n";
  EXPECT_THROW(clip::index::build_index(tiny_model(), c.identity(), clip::index::source_from_argument(csv, ""),
                                        c.tmp.path() + "/unclosed", quiet_options()),
               clip::Error);
}

TEST(IndexErrors, BadFoldersSourcesAndModelsAreRefusedWithClearMessages) {
  Collection c;
  auto message_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const clip::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message_of([&] { clip::index::source_from_argument(c.tmp.path() + "/nothing", ""); }).find("no such file"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              clip::index::source_from_argument(c.tmp.path() + "/shard-{000..009}.tar", "");
            }).find("no such shard"),
            std::string::npos);
  EXPECT_NE(
      message_of([&] { clip::index::source_from_argument(image_file("chelsea.png"), ""); }).find("expected a folder"),
      std::string::npos);
  // --out holding other files is not ours to write.
  EXPECT_NE(message_of([&] {
              clip::index::build_index(tiny_model(), c.identity(), c.source(), c.images, quiet_options());
            }).find("not empty"),
            std::string::npos);
  clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, quiet_options());
  EXPECT_NE(message_of([&] {
              clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, quiet_options());
            }).find("already holds an index"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              clip::index::update_index(tiny_model(), c.identity(), c.images, quiet_options());
            }).find("not an index"),
            std::string::npos);

  // Another model (another checkpoint path, or another architecture) is refused.
  const std::string copy = c.tmp.path() + "/copy.safetensors";
  fs::copy_file(model_path(), copy);
  auto other_path = clip::index::identify_model(tiny_model(), copy, clip::Precision::kFP32);
  const clip::index::Manifest m = clip::index::read_manifest(c.index);
  EXPECT_NE(
      message_of([&] { clip::index::check_same_model(m.model, other_path, c.index); }).find("built with the model"),
      std::string::npos);
  EXPECT_NE(message_of([&] {
              clip::index::update_index(tiny_model(), other_path, c.index, quiet_options());
            }).find("built with the model"),
            std::string::npos);
  auto other_config = c.identity();
  other_config.config_json = "{\"embed_dim\": 32}";
  EXPECT_NE(message_of([&] { clip::index::check_same_model(m.model, other_config, c.index); }).find("architecture"),
            std::string::npos);
  EXPECT_NO_THROW(clip::index::check_same_model(m.model, c.identity(), c.index));
  // The model recorded in the index loads with the same identity.
  const clip::Model reloaded = clip::index::load_index_model(m);
  EXPECT_NO_THROW(clip::index::check_same_model(
      m.model, clip::index::identify_model(reloaded, m.model.path, clip::Precision::kFP32), c.index));

  // A manifest naming a file outside the folder is refused.
  const std::string good = clip::util::read_file(c.index + "/manifest.json");
  std::string escaping = good;
  const std::string first_metadata = "\"" + m.chunks.at(0).metadata + "\"";
  escaping.replace(escaping.find(first_metadata), first_metadata.size(), "\"../metadata.jsonl\"");
  clip::util::write_file_atomic(c.index + "/manifest.json", escaping);
  EXPECT_NE(message_of([&] { ImageIndex::open(c.index); }).find("not a file name inside the index folder"),
            std::string::npos);
  // A damaged manifest names the file and the field.
  clip::util::write_file_atomic(c.index + "/manifest.json", "{\"format\": \"clip-index\", \"version\": 1}");
  const std::string damaged = message_of([&] { ImageIndex::open(c.index); });
  EXPECT_NE(damaged.find("manifest.json"), std::string::npos) << damaged;
  EXPECT_NE(damaged.find("generation"), std::string::npos) << damaged;
}

// The library writes nothing to stderr: progress and notes go to the caller's callbacks, skipped
// files and totals come back in the report (the `clip` command prints them).
TEST(IndexBuild, ReportsThroughCallbacksAndWritesNothingToStderr) {
  Collection c;
  // Work of another model, left by an interrupted build: discarded, with a note.
  fs::create_directories(c.index + "/work");
  std::ofstream(c.index + "/work/state.json") << "{\"model_path\": \"another.safetensors\"}\n";
  BuildOptions o = quiet_options();
  std::vector<std::string> notes;
  std::vector<std::tuple<std::string, int64_t, int64_t>> progress;
  o.on_note = [&](const std::string& line) { notes.push_back(line); };
  o.on_progress = [&](const std::string& stage, int64_t done, int64_t total) {
    progress.emplace_back(stage, done, total);
  };
  testing::internal::CaptureStderr();
  const clip::index::BuildReport report = clip::index::build_index(tiny_model(), c.identity(), c.source(), c.index, o);
  const std::string stderr_text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(stderr_text, "");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "note: " + c.index + "/work holds work of another model, storage or source; discarding it");
  // The embedding stage starts at 0 and ends with every file to embed done.
  ASSERT_GE(progress.size(), 2u);
  const int64_t to_embed = static_cast<int64_t>(c.valid.size()) + 1;  // the valid files and the broken one
  EXPECT_EQ(progress.front(), std::make_tuple(std::string("embedding"), int64_t{0}, to_embed));
  EXPECT_EQ(progress.back(), std::make_tuple(std::string("embedding"), to_embed, to_embed));
  EXPECT_EQ(report.indexed, static_cast<int64_t>(c.valid.size()));
  EXPECT_FALSE(report.skipped.empty());  // the broken image and the text file
}
