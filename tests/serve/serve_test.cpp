// The HTTP API against a running server on 127.0.0.1 (in-process, on a free port): valid
// requests give what the library computes directly, invalid ones the documented errors.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/index.h"
#include "serve/server.h"
#include "serve/thumbnail.h"
#include "tar_writer.h"
#include "tiny_model.h"
#include "util/file_io.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using clip::test::image_file;
using clip::test::model_path;
using clip::test::tiny_model;

std::string make_temp_dir() {
  std::string templ = (fs::temp_directory_path() / "clip_serve_test_XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  return templ;
}

const std::vector<std::string> kIndexed = {"astronaut_q95.jpg", "chelsea.png",    "coffee_q90_444.jpg",
                                           "rocket.jpg",        "horse_rgba.png", "motorcycle_200x500.png"};

// One index and one server for the suite (the model loads once).
class ServeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir();
    fs::create_directories(dir_ + "/images");
    for (const auto& name : kIndexed) fs::copy_file(image_file(name), dir_ + "/images/" + name);
    clip::index::BuildOptions b;
    clip::index::build_index(tiny_model(),
                             clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32),
                             clip::index::source_from_argument(dir_ + "/images", ""), dir_ + "/index", b);
    clip::serve::ServerOptions o;
    o.index_dir = dir_ + "/index";  // the model comes from the index
    o.port = 0;
    o.threads = 4;
    o.max_body_bytes = 1 << 20;
    o.max_pixels = 1000000;
    o.max_texts = 8;
    server_ = new clip::serve::Server(o);
    port_ = server_->start();
    ASSERT_EQ(server_->wait_until_loaded(), clip::serve::Server::State::kReady) << server_->load_error();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  static json body_of(const httplib::Result& r) { return json::parse(r->body); }
  static httplib::MultipartFormDataItems image_form(const std::string& name, const std::string& field = "image") {
    return {{field, clip::util::read_file(image_file(name)), name, "application/octet-stream"}};
  }

  static std::string dir_;
  static clip::serve::Server* server_;
  static int port_;
};
std::string ServeApi::dir_;
clip::serve::Server* ServeApi::server_ = nullptr;
int ServeApi::port_ = 0;

// The JSON error contract: the status, a JSON body {"error": "..."} that says something.
void expect_error(const httplib::Result& r, int status, const std::string& mentions = "") {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r->body;
  EXPECT_FALSE(j["error"].get<std::string>().empty());
  if (!mentions.empty()) {
    EXPECT_NE(j["error"].get<std::string>().find(mentions), std::string::npos) << r->body;
  }
}

torch::Tensor tensor_of(const json& rows) {
  std::vector<float> flat;
  for (const auto& row : rows)
    for (const auto& v : row) flat.push_back(v.get<float>());
  return torch::tensor(flat).reshape({static_cast<int64_t>(rows.size()), -1});
}

}  // namespace

TEST_F(ServeApi, HealthzIsReadyAndDescribesTheIndex) {
  auto r = client().Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const json j = body_of(r);
  EXPECT_EQ(j["status"], "ready");
  EXPECT_EQ(j["index"]["images"], kIndexed.size());
  EXPECT_EQ(j["embed_dim"], tiny_model().config().embed_dim);
}

TEST_F(ServeApi, EmbedTextsAndImagesEqualTheEmbedder) {
  const clip::Embedder embedder(tiny_model(), clip::Tokenizer(), 1);
  auto r = client().Post("/embed", R"({"texts": ["a dog", "a photo of a rocket"]})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const torch::Tensor expected = clip::normalize_rows(embedder.embed_texts({"a dog", "a photo of a rocket"}));
  EXPECT_TRUE(torch::allclose(tensor_of(body_of(r)["embeddings"]), expected, 1e-4, 1e-5));

  httplib::MultipartFormDataItems form = image_form("chelsea.png");
  form.push_back({"image", clip::util::read_file(image_file("rocket.jpg")), "rocket.jpg", "image/jpeg"});
  r = client().Post("/embed", form);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const torch::Tensor images =
      clip::normalize_rows(embedder.embed_image_files({image_file("chelsea.png"), image_file("rocket.jpg")}));
  EXPECT_TRUE(torch::allclose(tensor_of(body_of(r)["embeddings"]), images, 1e-4, 1e-5));
  EXPECT_EQ(body_of(r)["inputs"][1]["name"], "rocket.jpg");
}

TEST_F(ServeApi, ClassifyGivesTheZeroShotProbabilities) {
  httplib::MultipartFormDataItems form = image_form("chelsea.png");
  form.push_back({"labels", "cat, dog,rocket", "", ""});
  auto r = client().Post("/classify", form);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json labels = body_of(r)["labels"];
  ASSERT_EQ(labels.size(), 3u);
  // Independent computation: softmax of scaled cosine similarities to "a photo of a {}.".
  const clip::Embedder embedder(tiny_model(), clip::Tokenizer(), 1);
  const torch::Tensor img = clip::normalize_rows(embedder.embed_image_files({image_file("chelsea.png")}));
  const torch::Tensor txt =
      clip::normalize_rows(embedder.embed_texts({"a photo of a cat.", "a photo of a dog.", "a photo of a rocket."}));
  const torch::Tensor p = torch::softmax(std::exp(tiny_model().logit_scale()) * torch::matmul(img, txt.t()), 1)[0];
  const std::vector<std::string> names = {"cat", "dog", "rocket"};
  double sum = 0;
  for (const auto& l : labels) {
    const size_t i = std::find(names.begin(), names.end(), l["label"].get<std::string>()) - names.begin();
    ASSERT_LT(i, names.size());
    EXPECT_NEAR(l["probability"].get<double>(), p[static_cast<int64_t>(i)].item<double>(), 1e-4);
    sum += l["probability"].get<double>();
  }
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_GE(labels[0]["probability"].get<double>(), labels[1]["probability"].get<double>());
}

TEST_F(ServeApi, SearchByTextAndByExampleMatchBruteForce) {
  const clip::Embedder embedder(tiny_model(), clip::Tokenizer(), 1);
  std::vector<std::string> paths;
  for (const auto& n : kIndexed) paths.push_back(fs::canonical(dir_ + "/images/" + n).string());
  const torch::Tensor emb = clip::normalize_rows(embedder.embed_image_files(paths));
  const torch::Tensor q = clip::normalize_rows(embedder.embed_texts({"a cat on a sofa"}));
  const torch::Tensor scores = torch::matmul(emb, q.t()).reshape({-1});
  const auto [best, order] = scores.sort(0, true);

  auto r = client().Get("/search?q=a%20cat%20on%20a%20sofa&k=3");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json results = body_of(r)["results"];
  ASSERT_EQ(results.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(results[i]["score"].get<double>(), best[i].item<double>(), 1e-4);
    EXPECT_EQ(results[i]["path"], paths[order[i].item<int64_t>()]);
    EXPECT_EQ(results[i]["url"], "/images/" + std::to_string(results[i]["id"].get<int64_t>()));
  }

  // By example: an indexed image finds itself first, with similarity 1.
  httplib::MultipartFormDataItems form = image_form("rocket.jpg");
  form.push_back({"k", "2", "", ""});
  r = client().Post("/search", form);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json hits = body_of(r)["results"];
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0]["name"], "rocket.jpg");
  EXPECT_NEAR(hits[0]["score"].get<double>(), 1.0, 1e-4);
}

TEST_F(ServeApi, ImagesServesThumbnailsOfIndexedFilesOnly) {
  auto r = client().Get("/images/0");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(r->body.compare(0, 8, "\x89PNG\r\n\x1a\n"), 0);
  expect_error(client().Get("/images/" + std::to_string(kIndexed.size())), 404, "no image");
  expect_error(client().Get("/images/99999999999999999999999"), 404);
  expect_error(client().Get("/images/-1"), 404);
  expect_error(client().Get("/images/abc"), 404);
  expect_error(client().Get("/images/..%2F..%2Fetc%2Fpasswd"), 404);
  expect_error(client().Get("/images/../../etc/passwd"), 404);
}

TEST_F(ServeApi, TheWebPageAndItsFilesAreServed) {
  auto r = client().Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<script src=\"/app.js\">"), std::string::npos);
  EXPECT_EQ(client().Get("/app.js")->status, 200);
  EXPECT_EQ(client().Get("/style.css")->status, 200);
}

TEST_F(ServeApi, BadRequestsGetJsonErrorsWithFittingStatus) {
  auto c = client();
  expect_error(c.Post("/embed", "{not json", "application/json"), 400, "not valid JSON");
  expect_error(c.Post("/embed", R"({"texts": "a dog"})", "application/json"), 400, "texts");
  expect_error(c.Post("/embed", R"({"texts": []})", "application/json"), 400, "empty");
  expect_error(c.Post("/embed", R"({"texts": ["ok", 3]})", "application/json"), 400, "[1]");
  expect_error(c.Post("/embed", R"({"texts": [""]})", "application/json"), 400, "empty");
  expect_error(c.Post("/embed", "a dog", "text/plain"), 415);
  expect_error(c.Post("/embed", R"({"texts": ["a","b","c","d","e","f","g","h","i"]})", "application/json"), 413,
               "limit");
  expect_error(c.Post("/embed", std::string(1100 * 1024, 'x'), "application/json"), 413);
  expect_error(c.Post("/embed", image_form("random_bytes.bin")), 400, "random_bytes.bin");
  expect_error(c.Post("/embed", image_form("chelsea.png", "photo")), 400, "\"image\"");
  expect_error(c.Post("/embed", image_form("png_bomb.png")), 413, "limit");
  expect_error(c.Get("/search"), 400, "q");
  expect_error(c.Get("/search?q="), 400, "empty");
  expect_error(c.Get("/search?q=cat&k=0"), 400, "k");
  expect_error(c.Get("/search?q=cat&k=abc"), 400, "k");
  expect_error(c.Get("/search?q=cat&k=5x"), 400, "k");
  expect_error(c.Get("/search?q=" + std::string(5000, 'a')), 413);
  expect_error(c.Post("/search", R"({"q": "cat"})", "application/json"), 415);
  httplib::MultipartFormDataItems no_labels = image_form("chelsea.png");
  expect_error(c.Post("/classify", no_labels), 400, "labels");
  httplib::MultipartFormDataItems bad_template = image_form("chelsea.png");
  bad_template.push_back({"labels", "cat,dog", "", ""});
  bad_template.push_back({"templates", "a photo", "", ""});
  expect_error(c.Post("/classify", bad_template), 400, "{}");
  expect_error(c.Get("/nothing/here"), 404, "/nothing/here");
  expect_error(c.Delete("/search"), 404);
}

TEST_F(ServeApi, ClassifyRefusesWorkBeyondItsCapsBeforeDoingIt) {
  auto c = client();
  // 100 labels × 30 templates: more prompts than the limit (2048).
  httplib::MultipartFormDataItems many = image_form("chelsea.png");
  std::string labels;
  for (int i = 0; i < 100; ++i) labels += (i ? "," : "") + std::string("label") + std::to_string(i);
  many.push_back({"labels", labels, "", ""});
  for (int i = 0; i < 30; ++i) many.push_back({"templates", "a photo of a {} number " + std::to_string(i), "", ""});
  expect_error(c.Post("/classify", many), 413, "prompts");
  // One filled template longer than a text may be (each "{}" gets the label).
  httplib::MultipartFormDataItems long_prompt = image_form("chelsea.png");
  long_prompt.push_back({"labels", std::string(3000, 'a'), "", ""});
  long_prompt.push_back({"templates", "{} and {}", "", ""});
  expect_error(c.Post("/classify", long_prompt), 413, "bytes");
  // Every prompt within the limits, but all of them together too many bytes.
  httplib::MultipartFormDataItems big_total = image_form("chelsea.png");
  labels.clear();
  for (int i = 0; i < 600; ++i) labels += (i ? "," : "") + std::to_string(i) + std::string(896, 'b');
  big_total.push_back({"labels", labels, "", ""});
  big_total.push_back({"templates", "{} a", "", ""});
  big_total.push_back({"templates", "{} b", "", ""});
  expect_error(c.Post("/classify", big_total), 413, "bytes");
}

TEST_F(ServeApi, ConcurrentRequestsAllSucceedWithTheSameResults) {
  const std::string expected = client().Get("/search?q=an%20astronaut&k=4")->body;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, same{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      auto c = client();
      for (int i = 0; i < 5; ++i) {
        auto r = c.Get("/search?q=an%20astronaut&k=4");
        if (r && r->status == 200) ++ok;
        if (r && r->body == expected) ++same;
        auto e = c.Post("/embed", R"({"texts": ["a rocket"]})", "application/json");
        if (e && e->status == 200) ++ok;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 80);
  EXPECT_EQ(same.load(), 40);
}

TEST(ServeLifecycle, WithoutAnIndexSearchIs404AndAnotherModelFailsTheLoad) {
  clip::serve::ServerOptions o;
  o.model_path = model_path();
  o.port = 0;
  {
    clip::serve::Server server(o);
    const int port = server.start();
    httplib::Client c("127.0.0.1", port);
    // Until the model is loaded, model endpoints answer 503 (or, once loaded, 404 here).
    for (;;) {
      auto r = c.Get("/search?q=cat");
      ASSERT_TRUE(r);
      if (r->status == 503) {
        EXPECT_EQ(r->get_header_value("Retry-After"), "1");
        EXPECT_NE(json::parse(c.Get("/healthz")->body)["status"], "failed");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      expect_error(r, 404, "no index");
      break;
    }
    expect_error(c.Get("/images/0"), 404, "no index");
    // The port is taken now.
    clip::serve::ServerOptions same_port = o;
    same_port.port = port;
    clip::serve::Server second(same_port);
    EXPECT_THROW(second.start(), clip::Error);
  }
  EXPECT_THROW(clip::serve::Server(clip::serve::ServerOptions{}), clip::Error);  // neither model nor index
}

TEST(ServeLifecycle, AnIndexFromAnotherModelIsRefused) {
  const std::string dir = make_temp_dir();
  fs::create_directories(dir + "/images");
  fs::copy_file(image_file("chelsea.png"), dir + "/images/chelsea.png");
  const std::string copy = dir + "/other.safetensors";
  fs::copy_file(model_path(), copy);
  clip::index::BuildOptions b;
  clip::index::build_index(tiny_model(), clip::index::identify_model(tiny_model(), copy, clip::Precision::kFP32),
                           clip::index::source_from_argument(dir + "/images", ""), dir + "/index", b);
  clip::serve::ServerOptions o;
  o.model_path = model_path();
  o.index_dir = dir + "/index";
  o.port = 0;
  clip::serve::Server server(o);
  const int port = server.start();
  EXPECT_EQ(server.wait_until_loaded(), clip::serve::Server::State::kFailed);
  EXPECT_NE(server.load_error().find("built with the model"), std::string::npos) << server.load_error();
  httplib::Client c("127.0.0.1", port);
  expect_error(c.Get("/search?q=cat"), 500, "failed to load");
  EXPECT_EQ(c.Get("/healthz")->status, 500);
  server.stop();
  server.wait();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(ServeShards, ImagesServesThumbnailsOfTarMembers) {
  const std::string dir = fs::canonical(make_temp_dir()).string();
  const std::string shard = dir + "/00000.tar";
  clip::test::write_tar(shard, {{"a/000.png", clip::util::read_file(image_file("chelsea.png"))},
                                {"a/000.txt", "a cat"},
                                {"a/001.jpg", clip::util::read_file(image_file("coffee_exif_rot6.jpg"))}});
  clip::index::BuildOptions b;
  clip::index::build_index(tiny_model(),
                           clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32),
                           clip::index::source_from_argument(dir + "/{00000..00001}.tar", ""), dir + "/index", b);
  clip::serve::ServerOptions o;
  o.index_dir = dir + "/index";
  o.port = 0;
  clip::serve::Server server(o);
  const int port = server.start();
  ASSERT_EQ(server.wait_until_loaded(), clip::serve::Server::State::kReady) << server.load_error();
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/search?q=a+cat&k=2");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json results = json::parse(r->body)["results"];
  ASSERT_EQ(results.size(), 2u);
  for (const auto& hit : results) {
    const std::string path = hit["path"];
    ASSERT_EQ(path.rfind(shard + "#a/00", 0), 0u) << path;
    const std::string fixture = path == shard + "#a/000.png" ? "chelsea.png" : "coffee_exif_rot6.jpg";
    EXPECT_EQ(hit["name"], path == shard + "#a/000.png" ? "000.png" : "001.jpg");
    auto img = c.Get(hit["url"].get<std::string>());
    ASSERT_TRUE(img);
    ASSERT_EQ(img->status, 200) << img->body;
    EXPECT_EQ(img->get_header_value("Content-Type"), "image/png");
    // The thumbnail of the member's bytes, EXIF orientation applied.
    EXPECT_EQ(img->body, clip::serve::make_thumbnail(clip::util::read_file(image_file(fixture)), fixture,
                                                     o.thumbnail_size, clip::image::kDefaultMaxPixels));
  }
  // A shard gone since it was indexed: the member cannot be served any more.
  fs::remove(shard);
  expect_error(c.Get("/images/0"), 404, "can no longer be read");
  server.stop();
  server.wait();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(ServeLifecycle, ModelEndpointsAnswer503WhileTheModelIsLoading) {
  // A FIFO as the checkpoint: loading blocks in open() until a writer appears, so the server is
  // held in its loading state for as long as the test needs.
  const std::string dir = make_temp_dir();
  const std::string fifo = dir + "/model.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  clip::serve::ServerOptions o;
  o.model_path = fifo;
  o.port = 0;
  clip::serve::Server server(o);
  const int port = server.start();
  httplib::Client c("127.0.0.1", port);
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body)["status"], "loading");
  auto search = c.Get("/search?q=cat");
  expect_error(search, 503, "loading");
  EXPECT_EQ(search->get_header_value("Retry-After"), "1");
  expect_error(c.Post("/embed", R"({"texts": ["a"]})", "application/json"), 503, "loading");
  EXPECT_EQ(c.Get("/")->status, 200);  // the page does not need the model
  EXPECT_EQ(server.state(), clip::serve::Server::State::kLoading);
  // An empty "checkpoint" ends the loading with an error.
  const int fd = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(server.wait_until_loaded(), clip::serve::Server::State::kFailed);
  EXPECT_EQ(c.Get("/healthz")->status, 500);
  server.stop();
  server.wait();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(ServeDuplicates, ListsCopiesWithThumbnailUrlsAndRefusesWhatItShouldNotCompute) {
  const std::string dir = fs::canonical(make_temp_dir()).string();
  fs::create_directories(dir + "/images");
  for (const char* name : {"chelsea.png", "rocket.jpg", "coffee_q90_444.jpg"})
    fs::copy_file(image_file(name), dir + "/images/" + name);
  fs::copy_file(image_file("chelsea.png"), dir + "/images/zz-copy.png");
  clip::index::BuildOptions b;
  clip::index::build_index(tiny_model(),
                           clip::index::identify_model(tiny_model(), model_path(), clip::Precision::kFP32),
                           clip::index::source_from_argument(dir + "/images", ""), dir + "/index", b);
  auto serve = [&](int64_t max_images, const std::function<void(httplib::Client&)>& check) {
    clip::serve::ServerOptions o;
    o.index_dir = dir + "/index";
    o.port = 0;
    o.max_duplicates_images = max_images;
    clip::serve::Server server(o);
    const int port = server.start();
    ASSERT_EQ(server.wait_until_loaded(), clip::serve::Server::State::kReady) << server.load_error();
    httplib::Client c("127.0.0.1", port);
    check(c);
    server.stop();
    server.wait();
  };
  serve(4, [&](httplib::Client& c) {
    auto r = c.Get("/duplicates?threshold=0.99");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["images"], 4);
    EXPECT_NEAR(j["threshold"].get<double>(), 0.99, 1e-6);
    ASSERT_EQ(j["exact"].size(), 1u) << r->body;
    const json& members = j["exact"][0]["members"];
    ASSERT_EQ(members.size(), 2u);
    EXPECT_EQ(members[0]["name"], "chelsea.png");
    EXPECT_EQ(members[1]["name"], "zz-copy.png");
    for (const auto& m : members) {
      auto img = c.Get(m["url"].get<std::string>());
      ASSERT_TRUE(img);
      EXPECT_EQ(img->status, 200);
      EXPECT_EQ(img->get_header_value("Content-Type"), "image/png");
    }
    // What the command line finds, the same groups.
    const clip::index::ImageIndex idx = clip::index::ImageIndex::open(dir + "/index");
    const clip::index::Duplicates d = clip::index::find_duplicates(idx, 0.99f);
    EXPECT_EQ(j["near"].size(), d.near.size());
    EXPECT_EQ(c.Get("/duplicates?threshold=0.99")->body, r->body) << "asked again: the same answer";
    EXPECT_EQ(c.Get("/duplicates")->status, 200) << "the default threshold";
    for (const char* bad : {"0", "-0.5", "1.5", "abc", "0.9x", "nan", ""})
      expect_error(c.Get(std::string("/duplicates?threshold=") + bad), 400, "threshold");
  });
  // More images than the server compares pairs of: refused before any work, pointing to the CLI.
  serve(3, [&](httplib::Client& c) { expect_error(c.Get("/duplicates"), 413, "clip index duplicates"); });
  std::error_code ec;
  fs::remove_all(dir, ec);
}
