// `clip search`: the images of an index closest to a text or an example image.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/index.h"

namespace clip::cli {
namespace {

struct SearchOptions {
  ModelOptions model;  // optional: the index's model unless --model is given
  std::string index, text, image;
  int k = 10;
  bool json = false;
  index::OpenOptions open;
};

void run_search(const SearchOptions& o) {
  if (o.text.empty() == o.image.empty()) throw CLI::ValidationError("search", "give exactly one of --text and --image");
  const index::ImageIndex idx = index::ImageIndex::open(o.index, o.open);
  const index::Manifest& m = idx.manifest();
  hub::ResolvedModel files;
  Model model = [&] {
    if (o.model.model.empty()) {
      keep_freed_memory_for_reuse();
      set_threads(o.model.threads);
      return index::load_index_model(m);
    }
    return load_model(o.model, &files);
  }();
  if (!o.model.model.empty())
    index::check_same_model(m.model, index::identify_model(model, files.weights, model.precision()), o.index);
  const Embedder embedder(model, o.model.threads);
  const torch::Tensor query = o.text.empty() ? embedder.embed_image_files({o.image}) : embedder.embed_texts({o.text});
  const std::vector<index::Hit> hits = idx.search(query, o.k);
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < hits.size(); ++i)
      out.push_back({{"rank", i + 1}, {"id", hits[i].id}, {"score", hits[i].score}, {"path", hits[i].path}});
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  for (const auto& h : hits) std::printf("%8.4f  %s\n", h.score, h.path.c_str());
}

}  // namespace

void register_search(CLI::App& app) {
  auto o = std::make_shared<SearchOptions>();
  CLI::App* cmd = app.add_subcommand("search", "Find the indexed images closest to a text or an example image");
  cmd->add_option("--index", o->index, "The index folder (from `clip index build`)")->required();
  cmd->add_option("--text", o->text, "Search by text");
  cmd->add_option("--image", o->image, "Search by example image")->check(CLI::ExistingFile);
  cmd->add_option("-k,--top-k", o->k, "Results to show")->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("--mmap", o->open.mmap,
                "Memory-map the index's IVF lists instead of reading them (indexes larger than memory)");
  cmd->add_option("--rerank", o->open.rerank,
                  "Re-score the top K candidates by exact cosine (-1: the index's setting, 0: off)")
      ->check(CLI::Range(-1, 1 << 16));
  cmd->add_option("--model", o->model.model, "Checkpoint (default: the index's model; another model is an error)");
  cmd->add_option("--config", o->model.config, "Architecture as JSON (with --model)")->check(CLI::ExistingFile);
  cmd->add_option("--threads", o->model.threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--precision", o->model.precision, "fp32, bf16 or int8 (with --model)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  cmd->callback([o] { run_search(*o); });
}

}  // namespace clip::cli
