// `clip classify`: zero-shot classification with prompt ensembling.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/output.h"
#include "clip/embedder.h"
#include "clip/error.h"

namespace clip::cli {
namespace {

struct ClassifyOptions {
  ModelOptions model;
  std::vector<std::string> images;
  std::string labels, labels_file, templates_file;
  int top_k = 5;
  bool json = false;
};

void run_classify(const ClassifyOptions& o) {
  if (o.labels.empty() == o.labels_file.empty())
    throw CLI::ValidationError("classify", "give exactly one of --labels and --labels-file");
  const std::vector<std::string> labels = o.labels.empty() ? read_lines(o.labels_file) : split_commas(o.labels);
  if (labels.empty()) throw Error("no class labels given");
  const std::vector<std::string> templates =
      o.templates_file.empty() ? std::vector<std::string>{"a photo of a {}."} : read_lines(o.templates_file);
  if (templates.empty()) throw Error(o.templates_file + ": no templates in the file");
  const Model model = load_model(o.model);
  const Embedder embedder(model, o.model.threads);
  const torch::Tensor weights = embedder.zero_shot_weights(labels, templates);
  const torch::Tensor img = normalize_rows(embedder.embed_image_files(o.images));
  const torch::Tensor probs = torch::softmax(std::exp(model.logit_scale()) * torch::matmul(img, weights), 1);
  const int64_t k = std::min<int64_t>(o.top_k, static_cast<int64_t>(labels.size()));
  const auto [top_p, top_i] = probs.topk(k, 1);
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < o.images.size(); ++i) {
    nlohmann::json preds = nlohmann::json::array();
    for (int64_t j = 0; j < k; ++j)
      preds.push_back({{"label", labels[top_i[i][j].item<int64_t>()]}, {"probability", top_p[i][j].item<float>()}});
    out.push_back({{"image", o.images[i]}, {"top", preds}});
  }
  if (o.json) {
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  for (const auto& r : out) {
    std::printf("%s\n", r["image"].get<std::string>().c_str());
    for (const auto& p : r["top"])
      std::printf("  %6.2f%%  %s\n", 100.0 * p["probability"].get<double>(), p["label"].get<std::string>().c_str());
  }
}

}  // namespace

void register_classify(CLI::App& app) {
  auto o = std::make_shared<ClassifyOptions>();
  CLI::App* cmd = app.add_subcommand("classify", "Zero-shot classification of images into labels (prompt ensembling)");
  add_model_options(cmd, o->model);
  cmd->add_option("images", o->images, "Image files")->required()->check(CLI::ExistingFile);
  cmd->add_option("--labels", o->labels, "Comma-separated class names");
  cmd->add_option("--labels-file", o->labels_file, "Class names, one a line")->check(CLI::ExistingFile);
  cmd->add_option("--templates", o->templates_file,
                  "Prompt templates with {} for the class, one a line "
                  "(default: \"a photo of a {}.\")")
      ->check(CLI::ExistingFile);
  cmd->add_option("--top-k", o->top_k, "Predictions to show per image")->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] { run_classify(*o); });
}

}  // namespace clip::cli
