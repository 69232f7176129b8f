// Distributed builds: the parts of 2 ranks, merged, are exactly a one-process build (rows, order,
// embeddings, skipped files), for a folder and for tar shards; a rank killed with SIGKILL and run
// again continues from its finished chunks and gives the same index; `merge` refuses parts of
// another model, source or build, and names a rank that has not started or not finished.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cli/cli_run.h"
#include "clip/error.h"
#include "clip/image.h"
#include "clip/index.h"
#include "index/generation_rows.h"
#include "search_check.h"
#include "tar_writer.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"

extern char** environ;

namespace fs = std::filesystem;

namespace clip {
namespace {

using test::TempDir;

index::ModelIdentity identity(const std::string& path = test::model_path()) {
  return index::identify_model(test::tiny_model(), path, Precision::kFP32);
}

std::string random_png(uint32_t seed) {
  std::mt19937 rng(seed);
  image::Rgb8 rgb{12, 12, std::vector<uint8_t>(12 * 12 * 3)};
  for (auto& v : rgb.pixels) v = static_cast<uint8_t>(rng() & 0xFF);
  return image::encode_png(rgb);
}

// n distinct images, two exact copies (one embedding reused by content) and a broken file (skipped).
void write_images(const std::string& dir, int n) {
  fs::create_directories(dir + "/sub");
  for (int i = 0; i < n; ++i)
    util::write_file_atomic(dir + (i % 3 ? "/" : "/sub/") + "img-" + std::to_string(1000 + i) + ".png",
                            random_png(static_cast<uint32_t>(i)));
  util::write_file_atomic(dir + "/copy-a.png", random_png(5));
  util::write_file_atomic(dir + "/sub/copy-b.png", random_png(5));
  util::write_file_atomic(dir + "/broken.jpg", "not a jpeg");
}

index::BuildOptions options() {
  index::BuildOptions o = test::quiet_options();
  o.batch_size = 4;
  o.chunk_size = 5;
  return o;
}

// Everything a search and an export can see of an index: rows in id order, their embeddings, the
// skipped list.
struct Contents {
  std::vector<index::FileRecord> records;
  std::vector<float> embeddings;
  std::string skipped;
};
Contents contents(const std::string& dir) {
  const index::ImageIndex idx = index::ImageIndex::open(dir);
  Contents c;
  for (int64_t i = 0; i < idx.size(); ++i) c.records.push_back(idx.record(i));
  c.embeddings = index::read_generation_embeddings(dir, idx.manifest());
  c.skipped = util::read_file(dir + "/" + idx.manifest().skipped_file);
  return c;
}

void expect_same(const Contents& a, const Contents& b) {
  ASSERT_EQ(a.records.size(), b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) {
    EXPECT_EQ(a.records[i].path, b.records[i].path) << "row " << i;
    EXPECT_EQ(a.records[i].sha256, b.records[i].sha256) << "row " << i;
    EXPECT_EQ(a.records[i].size, b.records[i].size) << "row " << i;
    EXPECT_EQ(a.records[i].mtime_ns, b.records[i].mtime_ns) << "row " << i;
  }
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < a.embeddings.size() && i < b.embeddings.size(); ++i)
    if (std::abs(double(a.embeddings[i]) - b.embeddings[i]) > worst) {
      worst = std::abs(double(a.embeddings[i]) - b.embeddings[i]);
      worst_at = i;
    }
  EXPECT_TRUE(a.embeddings == b.embeddings) << "the embeddings differ (bitwise): at most " << worst << " (value "
                                            << worst_at << ")";
  const size_t dim = a.embeddings.size() / std::max<size_t>(1, a.records.size());
  for (size_t r = 0; r < a.records.size(); ++r)
    if (!std::equal(a.embeddings.begin() + r * dim, a.embeddings.begin() + (r + 1) * dim, b.embeddings.begin() + r * dim))
      std::printf("row %zu differs: %s\n", r, a.records[r].path.c_str());
  EXPECT_EQ(a.skipped, b.skipped);
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(IndexParts, TwoRanksMergedAreExactlyTheOneProcessBuildOfAFolder) {
  TempDir dir;
  write_images(dir.file("images"), 37);
  const index::Source source = index::source_from_argument(dir.file("images"), "");
  index::build_index(test::tiny_model(), identity(), source, dir.file("one"), options());
  const index::BuildReport r1 =
      index::build_index_part(test::tiny_model(), identity(), source, dir.file("two"), options(), 1, 2);
  const index::BuildReport r0 =
      index::build_index_part(test::tiny_model(), identity(), source, dir.file("two"), options(), 0, 2);
  EXPECT_EQ(r0.indexed + r1.indexed, 39);
  EXPECT_EQ(r0.skipped.size() + r1.skipped.size(), 1u);
  const index::BuildReport merged = index::merge_index_parts(dir.file("two"), nullptr);
  EXPECT_EQ(merged.indexed, 39);
  EXPECT_EQ(merged.generation, 1);
  EXPECT_FALSE(fs::exists(dir.file("two/parts"))) << "the parts are removed once merged";
  expect_same(contents(dir.file("one")), contents(dir.file("two")));
  const index::Manifest m = index::read_manifest(dir.file("two"));
  EXPECT_EQ(m.model.path, identity().path);
  EXPECT_EQ(m.source.path, source.path);
  // The merged index is an ordinary index: an update embeds only what changed.
  util::write_file_atomic(dir.file("images/late.png"), random_png(4242));
  const index::BuildReport u = index::update_index(test::tiny_model(), identity(), dir.file("two"), options());
  EXPECT_EQ(u.embedded, 1);
  EXPECT_EQ(u.indexed, 40);
}

TEST(IndexParts, TwoRanksMergedAreExactlyTheOneProcessBuildOfTarShards) {
  TempDir dir;
  fs::create_directories(dir.file("shards"));
  for (int s = 0; s < 5; ++s) {
    std::vector<std::pair<std::string, std::string>> members;
    for (int i = 0; i < 6; ++i)
      members.push_back({"s" + std::to_string(s) + "-" + std::to_string(i) + ".png",
                         random_png(static_cast<uint32_t>(100 * s + i))});
    members.push_back({"s" + std::to_string(s) + ".txt", "a caption"});
    test::write_tar(dir.file("shards/" + std::to_string(s) + ".tar"), members);
  }
  const index::Source source = index::source_from_argument(dir.file("shards/{0..4}.tar"), "");
  index::build_index(test::tiny_model(), identity(), source, dir.file("one"), options());
  for (int rank : {0, 1})
    index::build_index_part(test::tiny_model(), identity(), source, dir.file("two"), options(), rank, 2);
  index::merge_index_parts(dir.file("two"), nullptr);
  expect_same(contents(dir.file("one")), contents(dir.file("two")));
  EXPECT_EQ(index::read_manifest(dir.file("two")).shards.size(), 5u);
  EXPECT_EQ(index::read_manifest(dir.file("one")).shards.size(), 5u);
}

TEST(IndexParts, MergeRefusesPartsOfAnotherModelSourceOrBuildAndNamesMissingRanks) {
  TempDir dir;
  write_images(dir.file("images"), 6);
  write_images(dir.file("other-images"), 6);
  const index::Source source = index::source_from_argument(dir.file("images"), "");
  const std::string idx = dir.file("idx");
  EXPECT_NE(message_of([&] { index::merge_index_parts(idx, nullptr); }).find("no parts to merge"), std::string::npos);

  index::build_index_part(test::tiny_model(), identity(), source, idx, options(), 0, 2);
  std::string m = message_of([&] { index::merge_index_parts(idx, nullptr); });
  EXPECT_NE(m.find("rank 1 of 2 has not started"), std::string::npos) << m;

  // Rank 1 with the same weights under another path: another model as far as the index knows.
  fs::copy_file(test::model_path(), dir.file("copy.safetensors"));
  index::build_index_part(test::tiny_model(), identity(dir.file("copy.safetensors")), source, idx, options(), 1, 2);
  m = message_of([&] { index::merge_index_parts(idx, nullptr); });
  EXPECT_NE(m.find("rank 0 and rank 1 were embedded by another model"), std::string::npos) << m;

  // Rank 1 of another source.
  index::build_index_part(test::tiny_model(), identity(),
                          index::source_from_argument(dir.file("other-images"), ""), idx, options(), 1, 2);
  m = message_of([&] { index::merge_index_parts(idx, nullptr); });
  EXPECT_NE(m.find("describe another source"), std::string::npos) << m;

  // Rank 1 with other index parameters.
  index::BuildOptions ivf = options();
  ivf.params.kind = index::IndexKind::kIvf;
  ivf.params.nlist = 2;
  index::build_index_part(test::tiny_model(), identity(), source, idx, ivf, 1, 2);
  m = message_of([&] { index::merge_index_parts(idx, nullptr); });
  EXPECT_NE(m.find("other index parameters"), std::string::npos) << m;

  // Rank 1 as it should be, but not finished.
  index::build_index_part(test::tiny_model(), identity(), source, idx, options(), 1, 2);
  fs::remove(idx + "/parts/rank-1-of-2/done.json");
  m = message_of([&] { index::merge_index_parts(idx, nullptr); });
  EXPECT_NE(m.find("rank 1 of 2 has not finished"), std::string::npos) << m;
}

// Waits up to 60 s for a file to appear; false if it does not.
bool wait_for(const std::string& path) {
  for (int i = 0; i < 6000; ++i) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(IndexParts, ARankKilledAndRunAgainContinuesAndTheMergeEqualsAOneProcessBuild) {
  TempDir dir;
  write_images(dir.file("images"), 120);
  const std::string common = "index build --model " + test::model_path() + " --images " + dir.file("images") +
                             " --batch 2 --chunk 2 --threads 1 --out ";
  auto r = test::run_clip(common + dir.file("one") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;

  // Rank 1 started alone, killed (SIGKILL) once it has finished a few chunks.
  const std::string part = dir.file("two/parts/rank-1-of-2");
  std::vector<std::string> args = {CLIP_EXE, "index", "build", "--model", test::model_path(), "--images",
                                   dir.file("images"), "--batch", "2", "--chunk", "2", "--threads", "1", "--out",
                                   dir.file("two")};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.push_back(*e);
  env_strings.insert(env_strings.end(), {"RANK=1", "WORLD_SIZE=2"});
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, CLIP_EXE, nullptr, nullptr, argv.data(), envp.data()), 0);
  const bool started = wait_for(part + "/chunk-000003.jsonl");
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(started) << "rank 1 wrote no chunk in 60 s";
  ASSERT_TRUE(WIFSIGNALED(status)) << "rank 1 finished before it was killed; the test needs a slower rank";
  EXPECT_FALSE(fs::exists(part + "/done.json"));

  // Merging now names the unfinished rank; running rank 1 again continues from its chunks.
  r = test::run_clip("index merge --index " + dir.file("two") + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("rank 0 of 2 has not started"), std::string::npos) << r.output;
  r = test::run_shell("RANK=1 WORLD_SIZE=2 " + std::string(CLIP_EXE) + " " + common + dir.file("two") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1 of 2 (RANK/WORLD_SIZE)"), std::string::npos) << r.output;
  r = test::run_shell("SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=4 " + std::string(CLIP_EXE) + " " + common +
                      dir.file("two") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("rank 0 of 2 (SLURM_PROCID/SLURM_STEP_NUM_TASKS)"), std::string::npos) << r.output;
  r = test::run_clip("index merge --index " + dir.file("two") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same(contents(dir.file("one")), contents(dir.file("two")));

  // The local launcher: two ranks and the merge in one command.
  r = test::run_clip(common + dir.file("three") + " --nproc-per-node 2 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same(contents(dir.file("one")), contents(dir.file("three")));
}

}  // namespace
}  // namespace clip

namespace clip {
namespace {

// A part is a file another machine wrote: merge validates it before it renames or maps anything.
TEST(IndexParts, MergeRefusesHostilePartFilesByName) {
  TempDir dir;
  write_images(dir.file("images"), 6);
  const index::Source source = index::source_from_argument(dir.file("images"), "");
  const std::string idx = dir.file("idx"), part = idx + "/parts/rank-0-of-1";
  index::build_index_part(test::tiny_model(), identity(), source, idx, options(), 0, 1);
  const std::string done = util::read_file(part + "/done.json"), state = util::read_file(part + "/state.json");
  auto refused = [&](const std::string& file, const std::string& content, const std::string& expected) {
    util::write_file_atomic(part + "/" + file, content);
    const std::string m = message_of([&] { index::merge_index_parts(idx, nullptr); });
    EXPECT_NE(m.find(expected), std::string::npos) << file << ": " << m;
    EXPECT_FALSE(fs::exists(idx + "/manifest.json"));
    util::write_file_atomic(part + "/done.json", done);
    util::write_file_atomic(part + "/state.json", state);
  };
  nlohmann::json j = nlohmann::json::parse(done);
  j["chunks"][0]["embeddings"] = "../../../etc/passwd";  // a path out of the part
  refused("done.json", j.dump(), "not a file name inside");
  j = nlohmann::json::parse(done);
  j["chunks"][0]["rows"] = int64_t{1} << 40;  // more rows than its file holds
  refused("done.json", j.dump(), "rows");
  refused("done.json", "{\"chunks\": [", "not valid JSON");
  refused("done.json", "[]", "expected chunks, skipped, shards");
  j = nlohmann::json::parse(state);
  j["extra"]["params"]["nlist"] = -5;
  refused("state.json", j.dump(), "nlist");
  j = nlohmann::json::parse(state);
  j.erase("dim");
  refused("state.json", j.dump(), "not the state of a part");
  // A chunk's .npy whose header claims 2^40 rows: named when the merge maps it, nothing published.
  const auto chunks = nlohmann::json::parse(done)["chunks"];
  const std::string npy = part + "/" + chunks[0]["embeddings"].get<std::string>();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 64), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size());
  bytes += '\0';
  util::write_file_atomic(npy, bytes + header + std::string(1024, '\0'));
  const std::string m = message_of([&] { index::merge_index_parts(idx, nullptr); });
  EXPECT_NE(m.find(chunks[0]["embeddings"].get<std::string>()), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(idx + "/manifest.json"));
}

}  // namespace
}  // namespace clip
