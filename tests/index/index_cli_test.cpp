// `clip index build|update` and `clip search` as commands: outputs, exit statuses, messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "tar_writer.h"
#include "test_paths.h"
#include "util/file_io.h"

namespace fs = std::filesystem;
using clip::test::run_clip;

namespace {

std::string model_path() { return clip::test::data_dir() + "/fixtures/models/tiny-vit-f16.safetensors"; }
std::string image_file(const std::string& name) { return clip::test::data_dir() + "/images/files/" + name; }

struct Workspace {
  std::string dir;
  Workspace() {
    std::string templ = (fs::temp_directory_path() / "clip_index_cli_XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    dir = templ;
    fs::create_directories(dir + "/images");
    for (const char* n : {"chelsea.png", "rocket.jpg", "astronaut_q95.jpg", "jpeg_cut_header.jpg"})
      fs::copy_file(image_file(n), dir + "/images/" + n);
  }
  ~Workspace() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

TEST(IndexCli, BuildSearchUpdate) {
  Workspace w;
  auto r = run_clip("index build --model " + model_path() + " --images " + w.dir + "/images --out " + w.dir +
                    "/index --threads 2 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("3 images indexed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped: " + w.dir + "/images/jpeg_cut_header.jpg"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ETA"), std::string::npos) << "no progress bar when stderr is not a terminal";

  // Search by an indexed image: itself first, similarity 1.
  r = run_clip("search --index " + w.dir + "/index --image " + image_file("rocket.jpg") + " -k 2 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto hits = nlohmann::json::parse(r.output);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0]["path"], w.dir + "/images/rocket.jpg");
  EXPECT_NEAR(hits[0]["score"].get<double>(), 1.0, 1e-4);
  r = run_clip("search --index " + w.dir + "/index --text 'a cat' -k 10");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("chelsea.png"), std::string::npos) << r.output;
  r = run_clip("search --index " + w.dir + "/index --text 'a cat' --model " + model_path());
  EXPECT_EQ(r.status, 0) << r.output;

  fs::remove(w.dir + "/images/chelsea.png");
  fs::copy_file(image_file("coffee_q90_444.jpg"), w.dir + "/images/coffee.jpg");
  r = run_clip("index update --index " + w.dir + "/index 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("generation 2: 3 images indexed (1 embedded, 2 reused), 1 removed, 1 skipped"),
            std::string::npos)
      << r.output;
}

TEST(IndexCli, TarShardsAsTheSource) {
  Workspace w;
  clip::test::write_tar(w.dir + "/0.tar",
                        {{"000.png", clip::util::read_file(image_file("chelsea.png"))}, {"000.txt", "a cat"}});
  clip::test::write_tar(w.dir + "/1.tar",
                        {{"001.jpg", clip::util::read_file(image_file("rocket.jpg"))}, {"002.jpg", "not an image"}});
  auto r = run_clip("index build --model " + model_path() + " --images '" + w.dir + "/{0..1}.tar' --out " + w.dir +
                    "/index --threads 2 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 images indexed"), std::string::npos) << r.output;
  const std::string shard1 = fs::canonical(w.dir + "/1.tar").string();
  EXPECT_NE(r.output.find("skipped: " + shard1 + "#002.jpg: "), std::string::npos) << r.output;
  r = run_clip("search --index " + w.dir + "/index --image " + image_file("rocket.jpg") + " -k 1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(shard1 + "#001.jpg"), std::string::npos) << r.output;
  clip::test::write_tar(w.dir + "/1.tar", {{"001.jpg", clip::util::read_file(image_file("rocket.jpg"))}});
  r = run_clip("index update --index " + w.dir + "/index 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("generation 2: 2 images indexed (0 embedded, 2 reused), 0 removed, 0 skipped"),
            std::string::npos)
      << r.output;
  r = run_clip("index build --model " + model_path() + " --images '" + w.dir + "/{5..6}.tar' --out " + w.dir +
               "/other 2>&1");
  EXPECT_EQ(r.status, 3);  // not found (README: exit statuses)
  EXPECT_NE(r.output.find("no such shard"), std::string::npos) << r.output;
}

TEST(IndexCli, ErrorsNameTheProblem) {
  Workspace w;
  auto r =
      run_clip("index build --model " + model_path() + " --images " + w.dir + "/nothing --out " + w.dir + "/i 2>&1");
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.output.find("no such file or folder"), std::string::npos) << r.output;
  r = run_clip("index build --model " + model_path() + " --images " + w.dir + "/images --out " + w.dir +
               "/i --index-type lsh 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
  r = run_clip("index update --index " + w.dir + "/images 2>&1");
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.output.find("not an index folder"), std::string::npos) << r.output;
  r = run_clip("search --index " + w.dir + "/images --text cat 2>&1");
  EXPECT_EQ(r.status, 3);
  ASSERT_EQ(
      run_clip("index build --model " + model_path() + " --images " + w.dir + "/images --out " + w.dir + "/index 2>&1")
          .status,
      0);
  r = run_clip("search --index " + w.dir + "/index 2>&1");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("exactly one of --text and --image"), std::string::npos) << r.output;
  // Another model than the index's: refused.
  fs::copy_file(model_path(), w.dir + "/other.safetensors");
  r = run_clip("search --index " + w.dir + "/index --text cat --model " + w.dir + "/other.safetensors 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("built with the model"), std::string::npos) << r.output;
}
