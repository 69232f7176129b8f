// The APIs other applications speak, against a running server: OpenAI's /v1/embeddings and
// /v1/models, immich's /ping and /predict, several models by name with least-recently-used
// unloading. Expected embeddings come from the library directly (Embedder), never from the server.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "clip/embedder.h"
#include "clip/error.h"
#include "serve/base64.h"
#include "serve/model_registry.h"
#include "serve/server.h"
#include "temp_dir.h"
#include "tiny_model.h"
#include "util/file_io.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using clip::test::image_file;
using clip::test::model_path;
using clip::test::tiny_model;

torch::Tensor row_tensor(const std::vector<float>& v) { return torch::tensor(v).reshape({1, -1}); }

torch::Tensor json_row(const json& a) { return row_tensor(a.get<std::vector<float>>()); }

torch::Tensor text_features(const clip::Model& m, const std::string& text) {
  return clip::normalize_rows(clip::Embedder(m, 1).embed_texts({text}));
}
torch::Tensor image_features(const clip::Model& m, const std::string& file) {
  return clip::normalize_rows(clip::Embedder(m, 1).embed_image_files({file}));
}

bool close(const torch::Tensor& a, const torch::Tensor& b) { return torch::allclose(a, b, 1e-4, 1e-5); }

std::string data_uri(const std::string& file, const std::string& type) {
  const std::string bytes = clip::util::read_file(file);
  return "data:" + type + ";base64," + clip::serve::base64_encode(bytes.data(), bytes.size());
}

// A second model, different weights of the same architecture: its features differ from the tiny model's.
const std::string& other_model_path() {
  static const std::string path = [] {
    static clip::test::TempDir dir;
    const std::string p = dir.path() + "/other.safetensors";
    clip::Model::random(tiny_model().config(), 7).save_safetensors(p);
    return p;
  }();
  return path;
}
const clip::Model& other_model() {
  static const clip::Model m = clip::Model::load(other_model_path());
  return m;
}

class ServeApis : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    clip::serve::ServerOptions o;
    o.models = {"ViT-B-32__openai=" + model_path(), "other=" + other_model_path()};
    o.port = 0;
    o.threads = 4;
    o.max_body_bytes = 1 << 20;
    o.max_texts = 8;
    o.max_images = 2;
    server_ = new clip::serve::Server(o);
    port_ = server_->start();
    ASSERT_EQ(server_->wait_until_loaded(), clip::serve::Server::State::kReady) << server_->load_error();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  static httplib::Result embeddings(const json& body) {
    return client().Post("/v1/embeddings", body.dump(), "application/json");
  }
  static clip::serve::Server* server_;
  static int port_;
};
clip::serve::Server* ServeApis::server_ = nullptr;
int ServeApis::port_ = 0;

// OpenAI's error shape: {"error": {"message": "...", "type", "param", "code"}}.
void expect_openai_error(const httplib::Result& r, int status, const std::string& param = "",
                         const std::string& code = "") {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_object()) << r->body;
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r->body;
  EXPECT_EQ(e["type"], status >= 500 ? "server_error" : "invalid_request_error") << r->body;
  ASSERT_TRUE(e.contains("param") && e.contains("code")) << r->body;
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << r->body;
  }
  if (!code.empty()) {
    EXPECT_EQ(e["code"], code) << r->body;
  }
}

}  // namespace

TEST_F(ServeApis, EmbeddingsOfAStringAndABatchEqualTheEmbedder) {
  auto r = embeddings({{"model", "ViT-B-32__openai"}, {"input", "a dog"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "ViT-B-32__openai");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][0]["index"], 0);
  EXPECT_TRUE(close(json_row(j["data"][0]["embedding"]), text_features(tiny_model(), "a dog")));
  // "a dog": start, "a", "dog", end.
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"], 4);

  r = embeddings(
      {{"model", "ViT-B-32__openai"}, {"input", {"a cat", "a photo of a rocket"}}, {"encoding_format", "float"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  j = json::parse(r->body);
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_TRUE(close(json_row(j["data"][0]["embedding"]), text_features(tiny_model(), "a cat")));
  EXPECT_TRUE(close(json_row(j["data"][1]["embedding"]), text_features(tiny_model(), "a photo of a rocket")));
}

TEST_F(ServeApis, Base64IsLittleEndianFloat32OfTheSameEmbedding) {
  auto r = embeddings({{"model", "ViT-B-32__openai"}, {"input", "a dog"}, {"encoding_format", "base64"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string text = json::parse(r->body)["data"][0]["embedding"].get<std::string>();
  const std::string bytes = clip::serve::base64_decode(text, 1 << 20, "embedding");
  ASSERT_EQ(bytes.size(), sizeof(float) * static_cast<size_t>(tiny_model().config().embed_dim));
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  EXPECT_TRUE(close(row_tensor(v), text_features(tiny_model(), "a dog")));
}

TEST_F(ServeApis, TokenArraysEqualTheTextTheyEncode) {
  const clip::Tokenizer tok;
  std::vector<int32_t> ids = tok.encode("a photo of a rocket");
  const json one(std::vector<int64_t>(ids.begin(), ids.end()));
  auto r = embeddings({{"model", "ViT-B-32__openai"}, {"input", one}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_TRUE(close(json_row(j["data"][0]["embedding"]), text_features(tiny_model(), "a photo of a rocket")));
  EXPECT_EQ(j["usage"]["prompt_tokens"], ids.size() + 2);
  r = embeddings({{"model", "ViT-B-32__openai"}, {"input", {one, {320}}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["data"].size(), 2u);
  expect_openai_error(embeddings({{"model", "ViT-B-32__openai"}, {"input", {49408}}}), 400, "input");
  expect_openai_error(embeddings({{"model", "ViT-B-32__openai"}, {"input", std::vector<int>(76, 320)}}), 400, "input");
}

TEST_F(ServeApis, ImageDataUrisEqualTheEmbedderMixedWithTexts) {
  auto r = embeddings({{"model", "ViT-B-32__openai"},
                       {"input",
                        {"a dog", data_uri(image_file("chelsea.png"), "image/png"),
                         data_uri(image_file("rocket.jpg"), "image/jpeg")}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_EQ(j["data"].size(), 3u);
  EXPECT_TRUE(close(json_row(j["data"][0]["embedding"]), text_features(tiny_model(), "a dog")));
  EXPECT_TRUE(close(json_row(j["data"][1]["embedding"]), image_features(tiny_model(), image_file("chelsea.png"))));
  EXPECT_TRUE(close(json_row(j["data"][2]["embedding"]), image_features(tiny_model(), image_file("rocket.jpg"))));
}

TEST_F(ServeApis, BadRequestsGetOpenAiErrors) {
  const std::string m = "ViT-B-32__openai";
  expect_openai_error(embeddings({{"model", m}, {"input", "a"}, {"dimensions", 16}}), 400, "dimensions");
  expect_openai_error(embeddings({{"model", m}, {"input", "a"}, {"dimensions", 4096}}), 400, "dimensions");
  EXPECT_EQ(embeddings({{"model", m}, {"input", "a"}, {"dimensions", tiny_model().config().embed_dim}})->status, 200);
  expect_openai_error(embeddings({{"model", "text-embedding-3-small"}, {"input", "a"}}), 404, "model",
                      "model_not_found");
  expect_openai_error(embeddings({{"input", "a"}}), 400, "model");
  expect_openai_error(embeddings({{"model", m}}), 400, "input");
  expect_openai_error(embeddings({{"model", m}, {"input", ""}}), 400, "input");
  expect_openai_error(embeddings({{"model", m}, {"input", json::array()}}), 400, "input");
  expect_openai_error(embeddings({{"model", m}, {"input", {"a", 3}}}), 400, "input");
  expect_openai_error(embeddings({{"model", m}, {"input", "a"}, {"encoding_format", "fp16"}}), 400, "encoding_format");
  expect_openai_error(embeddings({{"model", m}, {"input", "https://example.com/cat.jpg"}}), 400, "input",
                      "image_urls_not_allowed");
  expect_openai_error(embeddings({{"model", m}, {"input", "data:image/png;base64,!!!!"}}), 400, "input");
  expect_openai_error(embeddings({{"model", m}, {"input", "data:text/plain;base64,aGVsbG8="}}), 400, "input");
  expect_openai_error(embeddings({{"model", m}, {"input", "data:image/png;base64,aGVsbG8="}}), 400);  // not an image
  expect_openai_error(embeddings({{"model", m}, {"input", std::vector<std::string>(9, "a")}}), 413, "input");
  const std::string uri = data_uri(image_file("chelsea.png"), "image/png");
  expect_openai_error(embeddings({{"model", m}, {"input", {uri, uri, uri}}}), 413, "input");
  expect_openai_error(client().Post("/v1/embeddings", "{not json", "application/json"), 400);
  expect_openai_error(client().Get("/v1/nothing"), 404);
}

TEST_F(ServeApis, ModelsListsTheServedNames) {
  auto r = client().Get("/v1/models");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0]["id"], "ViT-B-32__openai");
  EXPECT_EQ(j["data"][1]["id"], "other");
  EXPECT_EQ(j["data"][1]["object"], "model");
  EXPECT_TRUE(j["data"][1]["created"].is_number_integer());
  EXPECT_TRUE(j["data"][1]["owned_by"].is_string());
}

TEST_F(ServeApis, EachModelGivesItsOwnFeatures) {
  auto r = embeddings({{"model", "other"}, {"input", "a dog"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const torch::Tensor got = json_row(json::parse(r->body)["data"][0]["embedding"]);
  EXPECT_TRUE(close(got, text_features(other_model(), "a dog")));
  EXPECT_FALSE(close(got, text_features(tiny_model(), "a dog")));
}

// immich's server builds the form with Node's FormData: `entries` (JSON text) and the image as a
// Blob appended without a name (so the file name is "blob", type application/octet-stream), or
// a `text` field. It reads response.json()["clip"], a string holding the JSON array.
TEST_F(ServeApis, ImmichVisualAndTextualPredictions) {
  httplib::MultipartFormDataItems visual = {
      {"entries", R"({"clip":{"visual":{"modelName":"ViT-B-32__openai"}}})", "", ""},
      {"image", clip::util::read_file(image_file("motorcycle_200x500.png")), "blob", "application/octet-stream"}};
  auto r = client().Post("/predict", visual);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_TRUE(j["clip"].is_string()) << r->body;
  EXPECT_TRUE(close(json_row(json::parse(j["clip"].get<std::string>())),
                    image_features(tiny_model(), image_file("motorcycle_200x500.png"))));
  EXPECT_EQ(j["imageWidth"], 200);
  EXPECT_EQ(j["imageHeight"], 500);

  httplib::MultipartFormDataItems textual = {
      {"entries", R"({"clip":{"textual":{"modelName":"other","options":{"language":"en-US"}}}})", "", ""},
      {"text", "a motorcycle", "", ""}};
  r = client().Post("/predict", textual);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  j = json::parse(r->body);
  EXPECT_FALSE(j.contains("imageWidth"));
  EXPECT_TRUE(close(json_row(json::parse(j["clip"].get<std::string>())), text_features(other_model(), "a motorcycle")));
}

TEST_F(ServeApis, ImmichErrorsAndPing) {
  auto r = client().Get("/ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "pong");
  const std::string entries = R"({"clip":{"textual":{"modelName":"ViT-B-32__openai"}}})";
  r = client().Post("/predict", httplib::MultipartFormDataItems{{"entries", entries, "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;  // neither image nor text
  r = client().Post("/predict",
                    httplib::MultipartFormDataItems{{"entries", "{not json", "", ""}, {"text", "a", "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  r = client().Post("/predict",
                    httplib::MultipartFormDataItems{
                        {"entries", R"({"facial-recognition":{"detection":{"modelName":"buffalo_l"}}})", "", ""},
                        {"text", "a", "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  r = client().Post("/predict", httplib::MultipartFormDataItems{
                                    {"entries", R"({"clip":{"textual":{"modelName":"ViT-L-14__openai"}}})", "", ""},
                                    {"text", "a", "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->body;
  r = client().Post("/predict", httplib::MultipartFormDataItems{
                                    {"entries", R"({"clip":{"visual":{"modelName":"ViT-B-32__openai"}}})", "", ""},
                                    {"image", "not an image", "blob", "application/octet-stream"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

// With an API key: the OpenAI routes answer 401 in OpenAI's shape, /healthz and /ping stay open.
TEST(ServeApisAuth, MissingOrWrongKeyIs401InOpenAiShape) {
  clip::serve::ServerOptions o;
  o.model_path = model_path();
  o.port = 0;
  o.threads = 2;
  o.api_key = "s3cret";
  clip::serve::Server server(o);
  const int port = server.start();
  ASSERT_EQ(server.wait_until_loaded(), clip::serve::Server::State::kReady);
  httplib::Client c("127.0.0.1", port);
  const std::string body = json{{"model", "tiny-vit-f16"}, {"input", "a"}}.dump();
  expect_openai_error(c.Post("/v1/embeddings", body, "application/json"), 401, "", "invalid_api_key");
  expect_openai_error(c.Post("/v1/embeddings", {{"Authorization", "Bearer wrong"}}, body, "application/json"), 401, "",
                      "invalid_api_key");
  expect_openai_error(c.Get("/v1/models"), 401, "", "invalid_api_key");
  auto r = c.Post("/v1/embeddings", {{"Authorization", "Bearer s3cret"}}, body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;  // the model is named by its file stem
  r = c.Post("/predict", httplib::MultipartFormDataItems{{"text", "a", "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(c.Get("/ping")->status, 200);
  EXPECT_EQ(c.Get("/healthz")->status, 200);
}

// Three models, at most two loaded: the least recently used one is unloaded, and loads again
// (with its own weights) when asked for.
TEST(ServeApisModels, LeastRecentlyUsedIsUnloadedUnderTheBudget) {
  clip::serve::ServerOptions o;
  o.models = {"a=" + model_path(), "b=" + other_model_path(), "c=" + model_path()};
  o.max_models = 2;
  o.port = 0;
  o.threads = 2;
  clip::serve::Server server(o);
  const int port = server.start();
  ASSERT_EQ(server.wait_until_loaded(), clip::serve::Server::State::kReady) << server.load_error();
  httplib::Client c("127.0.0.1", port);
  auto loaded = [&] {
    std::vector<std::string> names;
    const json health = json::parse(c.Get("/healthz")->body);  // alive while iterated
    for (const json& m : health["models"])
      if (m["loaded"].get<bool>()) names.push_back(m["name"]);
    return names;
  };
  auto embed = [&](const std::string& model) {
    auto r = c.Post("/v1/embeddings", json{{"model", model}, {"input", "a dog"}}.dump(), "application/json");
    EXPECT_EQ(r->status, 200) << r->body;
    return json_row(json::parse(r->body)["data"][0]["embedding"]);
  };
  EXPECT_EQ(loaded(), std::vector<std::string>({"a"}));  // the default loads at start
  EXPECT_TRUE(close(embed("b"), text_features(other_model(), "a dog")));
  EXPECT_EQ(loaded(), std::vector<std::string>({"a", "b"}));
  EXPECT_TRUE(close(embed("c"), text_features(tiny_model(), "a dog")));
  EXPECT_EQ(loaded(), std::vector<std::string>({"b", "c"}));  // a was the least recently used
  EXPECT_TRUE(close(embed("a"), text_features(tiny_model(), "a dog")));
  EXPECT_EQ(loaded(), std::vector<std::string>({"a", "c"}));
  // /embed uses the default model, loading it again if it was unloaded.
  embed("b");
  embed("c");
  auto r = c.Post("/embed", R"({"texts": ["a dog"]})", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(close(json_row(json::parse(r->body)["embeddings"][0]), text_features(tiny_model(), "a dog")));
}

// A model that is unloaded while a request holds it stays usable until the request lets go.
TEST(ModelRegistry, UnloadedModelLivesWhileInUse) {
  int loads = 0;
  clip::serve::ModelRegistry registry(
      {{"a", model_path(), ""}, {"b", other_model_path(), ""}}, {1, 0}, [&](const clip::serve::ModelSpec& s) {
        ++loads;
        return std::make_shared<const clip::serve::LoadedModel>(clip::Model::load(s.path));
      });
  std::shared_ptr<const clip::serve::LoadedModel> a = registry.acquire("a");
  std::weak_ptr<const clip::serve::LoadedModel> watch = a;
  registry.acquire("b");  // over the budget of 1: a is unloaded from the registry
  EXPECT_EQ(registry.loaded_count(), 1u);
  EXPECT_FALSE(registry.describe()[0]["loaded"].get<bool>());
  ASSERT_FALSE(watch.expired());
  EXPECT_TRUE(close(clip::normalize_rows(a->embedder.embed_texts({"a dog"})), text_features(tiny_model(), "a dog")));
  a.reset();
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(registry.acquire("b").get(), registry.acquire("b").get());  // loaded once
  EXPECT_EQ(loads, 2);
  EXPECT_THROW(registry.acquire("nope"), clip::Error);
}

TEST(ModelRegistry, MemoryBudgetCountsWeights) {
  const uint64_t bytes = clip::serve::model_weight_bytes(tiny_model());
  ASSERT_GT(bytes, 0u);
  auto loader = [](const clip::serve::ModelSpec& s) {
    return std::make_shared<const clip::serve::LoadedModel>(clip::Model::load(s.path));
  };
  clip::serve::ModelRegistry two({{"a", model_path(), ""}, {"b", other_model_path(), ""}}, {0, bytes * 2}, loader);
  two.acquire("a");
  two.acquire("b");
  EXPECT_EQ(two.loaded_count(), 2u);
  clip::serve::ModelRegistry one({{"a", model_path(), ""}, {"b", other_model_path(), ""}}, {0, bytes * 3 / 2}, loader);
  one.acquire("a");
  one.acquire("b");
  EXPECT_EQ(one.loaded_count(), 1u);
  clip::serve::ModelRegistry none({{"a", model_path(), ""}}, {0, bytes / 2}, loader);
  try {
    none.acquire("a");
    FAIL() << "a model larger than the budget was loaded";
  } catch (const clip::Error& e) {
    EXPECT_EQ(e.kind(), clip::ErrorKind::kTooLarge);
  }
}

TEST(ModelSpec, NameEqualsPathOrFileStem) {
  EXPECT_EQ(clip::serve::parse_model_spec("ViT-B-32__openai=/m/ViT-B-32.pt").name, "ViT-B-32__openai");
  EXPECT_EQ(clip::serve::parse_model_spec("ViT-B-32__openai=/m/ViT-B-32.pt").path, "/m/ViT-B-32.pt");
  EXPECT_EQ(clip::serve::parse_model_spec("/m/ViT-B-32.pt").name, "ViT-B-32");
  EXPECT_EQ(clip::serve::parse_model_spec("/m/a=b/model.safetensors").name, "model");  // '=' inside the path
  EXPECT_EQ(clip::serve::parse_model_spec("hf/clip-vit-base-patch32/").name, "clip-vit-base-patch32");
  EXPECT_THROW(clip::serve::parse_model_spec("=x.pt"), clip::Error);
  EXPECT_THROW(clip::serve::parse_model_spec("name="), clip::Error);
  EXPECT_EQ(clip::serve::resolve_served_model({"ViT-B-32__openai"}, "vit-b-32__OPENAI"), "ViT-B-32__openai");
  EXPECT_EQ(clip::serve::resolve_served_model({"ViT-B-32__openai"}, "ViT-B-16__openai"), "");
}

TEST(Base64, StrictDecodingAndLimits) {
  EXPECT_EQ(clip::serve::base64_decode("aGVsbG8=", 100, "x"), "hello");
  EXPECT_EQ(clip::serve::base64_encode("hello", 5), "aGVsbG8=");
  EXPECT_THROW(clip::serve::base64_decode("aGVsbG8", 100, "x"), clip::Error);   // unpadded
  EXPECT_THROW(clip::serve::base64_decode("aGV*bG8=", 100, "x"), clip::Error);  // bad character
  EXPECT_THROW(clip::serve::base64_decode("aG=sbG8=", 100, "x"), clip::Error);  // padding inside
  try {
    clip::serve::base64_decode(std::string(4000, 'A'), 100, "x");
    FAIL();
  } catch (const clip::Error& e) {
    EXPECT_EQ(e.kind(), clip::ErrorKind::kTooLarge);
  }
  EXPECT_EQ(clip::serve::parse_image_data_uri("DATA:Image/PNG;base64,aGVsbG8=", 100, "x").media_type, "image/png");
  EXPECT_THROW(clip::serve::parse_image_data_uri("data:image/png,hello", 100, "x"), clip::Error);
}
