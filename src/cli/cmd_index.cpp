// `clip index build|update`: the embedding index of an image collection (see docs/search.md).
#include <cstdio>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/progress.h"
#include "clip/error.h"
#include "clip/index.h"

namespace clip::cli {
namespace {

struct IndexBuildOptions {
  ModelOptions model;
  std::string images, csv_column, out, index_type = "flat";
  index::IndexParams params;
  int batch = 32, chunk = 256;
};

struct IndexUpdateOptions {
  std::string index;
  int threads = 0, batch = 32, chunk = 256;
  std::string device = "cpu";
};

index::BuildOptions build_options(int threads, int batch, int chunk) {
  index::BuildOptions b;
  b.threads = threads;
  b.batch_size = batch;
  b.chunk_size = chunk;
  b.on_progress = progress_bar_on_stderr();  // drawn only where a person watches (stderr a terminal)
  b.on_note = notes_on_stderr();
  return b;
}

void print_report(const index::BuildReport& r, const std::string& dir) {
  for (const auto& s : r.skipped) std::fprintf(stderr, "skipped: %s: %s\n", s.path.c_str(), s.reason.c_str());
  std::fprintf(stderr,
               "%s: generation %lld: %lld images indexed (%lld embedded, %lld reused), %lld removed, %zu skipped%s\n",
               dir.c_str(), static_cast<long long>(r.generation), static_cast<long long>(r.indexed),
               static_cast<long long>(r.embedded), static_cast<long long>(r.reused), static_cast<long long>(r.removed),
               r.skipped.size(), r.skipped.empty() ? "" : " (listed in the index folder's skipped-*.jsonl)");
}

void run_build(IndexBuildOptions o) {
  o.params.kind = index::index_kind_from_name(o.index_type);
  o.params.validate();
  index::Source source;
  try {
    source = index::source_from_argument(o.images, o.csv_column);
  } catch (const Error& e) {
    throw Error("--images: " + std::string(e.what()), e.kind());  // the flag, for the user who gave it
  }
  hub::ResolvedModel files;
  const Model model = load_model(o.model, &files);
  // The file, not the name: the index reloads it from there (its config, with the
  // preprocessing, is saved beside the index).
  const index::ModelIdentity identity =
      index::identify_model(model, files.weights, precision_from_name(o.model.precision));
  index::BuildOptions b = build_options(o.model.threads, o.batch, o.chunk);
  b.params = o.params;
  print_report(index::build_index(model, identity, source, o.out, b), o.out);
}

void run_update(const IndexUpdateOptions& o) {
  const index::Manifest manifest = index::read_manifest(o.index);
  keep_freed_memory_for_reuse();
  set_threads(o.threads);
  if (o.device == "cuda" && !torch::cuda::is_available())
    throw Error("--device cuda: this build of libtorch has no CUDA device available (use --device cpu)");
  const torch::Device device = o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  const Model model = index::load_index_model(manifest, device);
  const index::ModelIdentity identity =
      index::identify_model(model, manifest.model.path, precision_from_name(manifest.model.precision));
  print_report(index::update_index(model, identity, o.index, build_options(o.threads, o.batch, o.chunk)), o.index);
}

}  // namespace

void register_index(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("index", "Build and update an embedding index of images (for `clip search`, `clip serve`)");
  cmd->require_subcommand(1);

  auto b = std::make_shared<IndexBuildOptions>();
  CLI::App* build =
      cmd->add_subcommand("build", "Embed every image of a folder, CSV list or tar shards into a new index");
  add_model_options(build, b->model);
  build
      ->add_option("--images", b->images,
                   "A folder (searched recursively), a .csv with a column of image paths, or WebDataset tar shards "
                   "(x.tar or a brace pattern, quoted: 'shards/{00000..00009}.tar'; a row per image member, "
                   "its path SHARD#MEMBER)")
      ->required();
  build->add_option("--csv-column", b->csv_column, "CSV column of paths (default: path, filepath or image)");
  build->add_option("--out", b->out, "The index folder to create")->required();
  build->add_option("--index-type", b->index_type, "flat (exact), ivf or hnsw (approximate, for large collections)")
      ->check(CLI::IsMember({"flat", "ivf", "hnsw"}));
  build->add_option("--nlist", b->params.nlist, "ivf: inverted lists (0: about 4*sqrt(N))")
      ->check(CLI::Range(0, 1 << 24));
  build->add_option("--nprobe", b->params.nprobe, "ivf: lists searched per query")->check(CLI::Range(1, 1 << 24));
  build->add_option("--hnsw-m", b->params.hnsw_m, "hnsw: neighbours per node")->check(CLI::Range(2, 512));
  build->add_option("--ef-construction", b->params.ef_construction, "hnsw: build-time candidates")
      ->check(CLI::Range(1, 1 << 16));
  build->add_option("--ef-search", b->params.ef_search, "hnsw: search-time candidates")->check(CLI::Range(1, 1 << 16));
  build->add_option("--batch", b->batch, "Images per forward pass")->check(CLI::Range(1, 4096));
  build->add_option("--chunk", b->chunk, "Images per saved work chunk (what an interrupted build keeps)")
      ->check(CLI::Range(1, 1 << 20));
  build->callback([b] { run_build(*b); });

  auto u = std::make_shared<IndexUpdateOptions>();
  CLI::App* update =
      cmd->add_subcommand("update", "Embed new and changed images of the index's source, drop deleted ones");
  update->add_option("--index", u->index, "The index folder")->required();
  update->add_option("--threads", u->threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  update->add_option("--device", u->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  update->add_option("--batch", u->batch, "Images per forward pass")->check(CLI::Range(1, 4096));
  update->add_option("--chunk", u->chunk, "Images per saved work chunk")->check(CLI::Range(1, 1 << 20));
  update->callback([u] { run_update(*u); });
}

}  // namespace clip::cli
