// `clip similarity`: cosine similarity, logits and softmax over the texts for each image.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "clip/embedder.h"

namespace clip::cli {
namespace {

struct SimilarityOptions {
  ModelOptions model;
  std::vector<std::string> images, texts;
  bool json = false;
};

void run_similarity(const SimilarityOptions& o) {
  const Model model = load_model(o.model);
  const Embedder embedder(model, o.model.threads);
  const torch::Tensor img = embedder.embed_image_files(o.images), txt = embedder.embed_texts(o.texts);
  const torch::Tensor cosine = torch::matmul(normalize_rows(img), normalize_rows(txt).t());
  const torch::Tensor logits = model.logits(img, txt);
  const torch::Tensor probs = torch::softmax(logits, 1);
  if (o.json) {
    nlohmann::json out = {{"images", o.images},
                          {"texts", o.texts},
                          {"logit_scale", model.logit_scale()},
                          {"pairs", nlohmann::json::array()}};
    for (size_t i = 0; i < o.images.size(); ++i)
      for (size_t j = 0; j < o.texts.size(); ++j)
        out["pairs"].push_back({{"image", o.images[i]},
                                {"text", o.texts[j]},
                                {"cosine", cosine[i][j].item<float>()},
                                {"logit", logits[i][j].item<float>()},
                                {"probability", probs[i][j].item<float>()}});
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("%-32s %-40s %9s %9s %9s\n", "image", "text", "cosine", "logit", "softmax");
  for (size_t i = 0; i < o.images.size(); ++i)
    for (size_t j = 0; j < o.texts.size(); ++j)
      std::printf("%-32s %-40s %9.4f %9.3f %9.4f\n", o.images[i].c_str(), o.texts[j].c_str(),
                  cosine[i][j].item<float>(), logits[i][j].item<float>(), probs[i][j].item<float>());
}

}  // namespace

void register_similarity(CLI::App& app) {
  auto o = std::make_shared<SimilarityOptions>();
  CLI::App* cmd = app.add_subcommand("similarity", "Cosine similarity, logits and softmax of images against texts");
  add_model_options(cmd, o->model);
  cmd->add_option("--image", o->images, "Image files")->required()->check(CLI::ExistingFile);
  cmd->add_option("--text", o->texts, "Texts")->required();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] { run_similarity(*o); });
}

}  // namespace clip::cli
