// `clip index build|update`: the embedding index of an image collection (see docs/search.md).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/progress.h"
#include "clip/error.h"
#include "clip/index.h"
#include "train/launcher.h"

namespace clip::cli {
namespace {

struct IndexBuildOptions {
  ModelOptions model;
  std::string images, csv_column, out, index_type = "flat", storage = "f32";
  index::IndexParams params;
  int batch = 32, chunk = 256, nproc_per_node = 1;
};

struct IndexImportOptions {
  ModelOptions model;
  std::string out, index_type = "flat", storage = "f32";
  index::ImportOptions import;
};

struct IndexMergeOptions {
  std::string index;
};

// This process's rank in a distributed build: torchrun's RANK and WORLD_SIZE, else those of a
// Slurm job step (srun: SLURM_PROCID of SLURM_STEP_NUM_TASKS; not SLURM_NTASKS, which a batch
// script sees too, where one process would then build one share only); world 1 (a whole build)
// when neither is set.
struct RankEnv {
  int rank = 0, world = 1;
  std::string from;  // the variables read
};

int env_int(const char* name, int min, int max) {
  const char* value = std::getenv(name);
  char* end = nullptr;
  errno = 0;
  const long v = value && *value ? std::strtol(value, &end, 10) : -1;
  if (!value || !*value || errno || *end || v < min || v > max)
    throw Error(std::string("the environment variable ") + name + "=\"" + (value ? value : "") +
                "\" is not an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int>(v);
}

RankEnv rank_from_environment() {
  RankEnv e;
  const char* world = std::getenv("WORLD_SIZE");
  const char* ntasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (world && *world) {
    e.world = env_int("WORLD_SIZE", 1, 1 << 20);
    e.rank = e.world > 1 ? env_int("RANK", 0, e.world - 1) : 0;
    e.from = "RANK/WORLD_SIZE";
  } else if (ntasks && *ntasks) {
    e.world = env_int("SLURM_STEP_NUM_TASKS", 1, 1 << 20);
    e.rank = e.world > 1 ? env_int("SLURM_PROCID", 0, e.world - 1) : 0;
    e.from = "SLURM_PROCID/SLURM_STEP_NUM_TASKS";
  }
  return e;
}

struct IndexExportOptions {
  std::string index, out;
};

struct IndexDuplicatesOptions {
  std::string index;
  float threshold = 0.95f;
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

void run_merge(const IndexMergeOptions& o) {
  print_report(index::merge_index_parts(o.index, notes_on_stderr()), o.index);
}

void run_build(IndexBuildOptions o) {
  o.params.kind = index::index_kind_from_name(o.index_type);
  o.params.validate();
  const RankEnv rank = rank_from_environment();
  if (o.nproc_per_node > 1 && rank.world == 1) {
    // The launcher: the ranks run this same command line (WORLD_SIZE set, so they embed their
    // share instead of launching); when all have finished, their parts are merged here.
    const int status = train::launch_local_workers(o.nproc_per_node, o.model.threads, -1, nullptr);
    if (status != 0)
      throw Error(o.out + ": a rank failed (named above); run the same command again: finished ranks are not redone, "
                          "an interrupted one continues from its finished chunks",
                  ErrorKind::kIo);
    run_merge({o.out});
    return;
  }
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
  b.storage = index::storage_from_name(o.storage);
  if (rank.world == 1) {
    print_report(index::build_index(model, identity, source, o.out, b), o.out);
    return;
  }
  const index::BuildReport r = index::build_index_part(model, identity, source, o.out, b, rank.rank, rank.world);
  for (const auto& s : r.skipped) std::fprintf(stderr, "skipped: %s: %s\n", s.path.c_str(), s.reason.c_str());
  std::fprintf(stderr,
               "%s: rank %d of %d (%s): %lld images in its part (%lld embedded, %lld reused), %zu skipped; "
               "when every rank has finished: clip index merge --index %s\n",
               o.out.c_str(), rank.rank, rank.world, rank.from.c_str(), static_cast<long long>(r.indexed),
               static_cast<long long>(r.embedded), static_cast<long long>(r.reused), r.skipped.size(), o.out.c_str());
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

void run_import(IndexImportOptions o) {
  o.import.params.kind = index::index_kind_from_name(o.index_type);
  o.import.storage = index::storage_from_name(o.storage);
  const Model model = load_model(o.model);
  const index::ModelIdentity identity =
      index::identify_model(model, o.model.model, precision_from_name(o.model.precision));
  print_report(index::import_index(identity, model.config().embed_dim, o.import, o.out), o.out);
}

void run_export(const IndexExportOptions& o) {
  const int64_t n = index::export_index(o.index, o.out);
  std::fprintf(stderr, "%s: %lld embeddings and their metadata written\n", o.out.c_str(), static_cast<long long>(n));
}

void run_duplicates(const IndexDuplicatesOptions& o) {
  const index::ImageIndex idx = index::ImageIndex::open(o.index, {false, 0});
  const index::Duplicates d = index::find_duplicates(idx, o.threshold);
  auto groups = [](const std::vector<index::DuplicateGroup>& list, bool exact) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& g : list) {
      nlohmann::json members = nlohmann::json::array();
      for (const auto& m : g.members) {
        nlohmann::json member = {{"id", m.id}, {"path", m.path}};
        if (!exact) member["best_score"] = m.best_score;
        members.push_back(member);
      }
      out.push_back(exact ? nlohmann::json{{"sha256", g.sha256}, {"members", members}}
                          : nlohmann::json{{"members", members}});
    }
    return out;
  };
  const nlohmann::json out = {
      {"threshold", o.threshold}, {"exact", groups(d.exact, true)}, {"near", groups(d.near, false)}};
  std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

// The flags of the search structure, shared by build and import.
void add_index_type_options(CLI::App* cmd, std::string& index_type, index::IndexParams& params) {
  cmd->add_option("--index-type", index_type,
                  "flat (exact), ivf or hnsw (approximate, for large collections), ivfpq (compressed, pq-m bytes "
                  "per image)")
      ->check(CLI::IsMember({"flat", "ivf", "hnsw", "ivfpq"}));
  cmd->add_option("--nlist", params.nlist, "ivf, ivfpq: inverted lists (0: about 4*sqrt(N))")
      ->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--nprobe", params.nprobe, "ivf, ivfpq: lists searched per query")->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--pq-m", params.pq_m, "ivfpq: bytes per image (sub-quantizers; divides the dimension; 0: dim/8)")
      ->check(CLI::Range(0, 1 << 12));
  cmd->add_option("--train-sample", params.train_sample, "ivf, ivfpq: images to train the quantizers on (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 36));
  cmd->add_option("--rerank", params.rerank,
                  "Searches re-score the top K candidates by exact cosine from the stored embeddings (0: off)")
      ->check(CLI::Range(0, 1 << 16));
  cmd->add_option("--hnsw-m", params.hnsw_m, "hnsw: neighbours per node")->check(CLI::Range(2, 512));
  cmd->add_option("--ef-construction", params.ef_construction, "hnsw: build-time candidates")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--ef-search", params.ef_search, "hnsw: search-time candidates")->check(CLI::Range(1, 1 << 16));
}

void add_storage_option(CLI::App* cmd, std::string& storage) {
  cmd->add_option("--storage", storage,
                  "How the embeddings are stored: f32, or f16 (half the disk; searched as stored)")
      ->check(CLI::IsMember({"f32", "f16"}));
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
  add_index_type_options(build, b->index_type, b->params);
  build->add_option("--batch", b->batch, "Images per forward pass")->check(CLI::Range(1, 4096));
  build->add_option("--chunk", b->chunk, "Images per chunk (what an interrupted build keeps, an update rewrites)")
      ->check(CLI::Range(1, 1 << 20));
  add_storage_option(build, b->storage);
  build
      ->add_option("--nproc-per-node", b->nproc_per_node,
                   "Embed with this many processes on this machine, then merge (on many machines: run one rank "
                   "each with RANK and WORLD_SIZE, or under srun, then `clip index merge`)")
      ->check(CLI::Range(1, 1024));
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

  auto im = std::make_shared<IndexImportOptions>();
  CLI::App* import = cmd->add_subcommand(
      "import", "A new index from precomputed embeddings (a .npy, or clip-retrieval img_emb/img_emb_N.npy chunks)");
  add_model_options(import, im->model);
  import
      ->add_option("--embeddings", im->import.embeddings,
                   "A float32/float16 .npy [N, D], or a folder of img_emb_N.npy chunks (in FOLDER/img_emb/ or FOLDER)")
      ->required();
  import
      ->add_option("--paths", im->import.paths,
                   "The N paths or ids in chunk order: .jsonl ({\"path\"} a line), .csv (--csv-column), or text (a "
                   "path a line)")
      ->required();
  import->add_option("--csv-column", im->import.csv_column, "CSV column of paths (default: path, filepath or image)");
  import->add_option("--out", im->out, "The index folder to create")->required();
  add_index_type_options(import, im->index_type, im->import.params);
  add_storage_option(import, im->storage);
  import->callback([im] { run_import(*im); });

  auto du = std::make_shared<IndexDuplicatesOptions>();
  CLI::App* dup = cmd->add_subcommand(
      "duplicates", "List groups of exact (same sha256) and near duplicates (cosine >= threshold) as JSON");
  dup->add_option("--index", du->index, "The index folder")->required();
  dup->add_option("--threshold", du->threshold, "Cosine at or above which two images are near duplicates")
      ->check(CLI::Range(0.0001, 1.0));
  dup->callback([du] { run_duplicates(*du); });

  auto ex = std::make_shared<IndexExportOptions>();
  CLI::App* exp = cmd->add_subcommand(
      "export", "Write an index's embeddings (OUT/embeddings.npy) and metadata (OUT/metadata.jsonl), row by row");
  exp->add_option("--index", ex->index, "The index folder")->required();
  exp->add_option("--out", ex->out, "The folder to write")->required();
  exp->callback([ex] { run_export(*ex); });

  auto mg = std::make_shared<IndexMergeOptions>();
  CLI::App* merge = cmd->add_subcommand(
      "merge", "Publish an index from the parts its ranks built (clip index build with RANK and WORLD_SIZE set)");
  merge->add_option("--index", mg->index, "The index folder the ranks wrote their parts into")->required();
  merge->callback([mg] { run_merge(*mg); });
}

}  // namespace clip::cli
