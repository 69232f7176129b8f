// `clip embed`: one embedding row per input, images first then texts, in the order given.
#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/output.h"
#include "clip/embedder.h"
#include "clip/error.h"

namespace clip::cli {
namespace {

struct EmbedOptions {
  ModelOptions model;
  std::vector<std::string> images, texts;
  std::string out;
  bool normalize = false;
  int batch = 32;
};

void run_embed(const EmbedOptions& o) {
  if (o.images.empty() && o.texts.empty()) throw CLI::ValidationError("embed", "give at least one --image or --text");
  const Model model = load_model(o.model);
  const Embedder embedder(model, o.model.threads);
  std::vector<torch::Tensor> parts;
  std::vector<EmbeddingRow> rows;
  if (!o.images.empty()) parts.push_back(embedder.embed_image_files(o.images, o.batch));
  for (const auto& p : o.images) rows.push_back({"image", p});
  if (!o.texts.empty()) parts.push_back(embedder.embed_texts(o.texts));
  for (const auto& t : o.texts) rows.push_back({"text", t});
  torch::Tensor features = torch::cat(parts, 0);
  if (o.normalize) features = normalize_rows(features);
  write_embeddings(o.out, features, rows);
  std::fprintf(stderr, "wrote %lld x %lld embeddings to %s\n", static_cast<long long>(features.size(0)),
               static_cast<long long>(features.size(1)), o.out.c_str());
}

}  // namespace

void register_embed(CLI::App& app) {
  auto o = std::make_shared<EmbedOptions>();
  CLI::App* cmd = app.add_subcommand("embed", "Embed images and texts (one row per input: images, then texts)");
  add_model_options(cmd, o->model);
  cmd->add_option("--image", o->images, "Image files")->check(CLI::ExistingFile);
  cmd->add_option("--text", o->texts, "Texts");
  cmd->add_option("--out", o->out, "Output: .npy (float32 [N, D]) or .jsonl")->required();
  cmd->add_flag("--normalize", o->normalize, "L2-normalize each row (default: raw encode_image/encode_text)");
  cmd->add_option("--batch", o->batch, "Images per forward pass")->check(CLI::Range(1, 4096));
  cmd->callback([o] { run_embed(*o); });
}

}  // namespace clip::cli
