// An embedding index of image files: build it from a folder, a CSV list or WebDataset tar shards,
// keep it up to date, search it by text or by example. The on-disk format is described in docs/search.md.
//
// An index folder always holds one complete generation: the files of a generation are written
// under temporary names and renamed, and manifest.json, which names them, is written last. An
// interrupted build or update leaves finished chunks in INDEX/work/, reused on the next run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clip/model.h"
#include "clip/progress.h"

namespace faiss {
struct Index;
}

namespace clip::index {

class GenerationRows;
class GenerationRecords;

// ---- what an index is built with -----------------------------------------------------------

enum class IndexKind { kFlat, kIvf, kHnsw, kIvfPq };
const char* index_kind_name(IndexKind kind);              // "flat", "ivf", "hnsw", "ivfpq"
IndexKind index_kind_from_name(const std::string& name);  // throws clip::Error naming the value

struct IndexParams {
  IndexKind kind = IndexKind::kFlat;  // flat: exact inner product (IndexFlatIP)
  int nlist = 0;                      // ivf: inverted lists (0: about 4·sqrt(N), at most N)
  int nprobe = 16;                    // ivf: lists visited per query
  int hnsw_m = 32;                    // hnsw: neighbours per node
  int ef_construction = 80;           // hnsw: candidate list while building
  int ef_search = 64;                 // hnsw: candidate list while searching
  int pq_m = 0;                       // ivfpq: bytes per vector (sub-quantizers; 0: dim / 8), divides dim
  int64_t train_sample = 0;           // ivf, ivfpq: rows the quantizers are trained on (0: all)
  int rerank = 0;                     // candidates re-scored by exact cosine from the stored embeddings (0: none)
  void validate() const;              // throws clip::Error naming the bad parameter
  // validate() plus the checks that need the dimension (pq_m divides dim).
  void validate_for(int dim) const;
};

// How new embeddings are stored: float32, or float16 (half the disk and page cache; searches are
// built from the rounded values, so an index answers from what it stores).
enum class Storage { kF32, kF16 };
const char* storage_name(Storage s);              // "f32", "f16"
Storage storage_from_name(const std::string& name);  // throws clip::Error naming the value

// The model that computed the embeddings. An index refuses queries from another model: embeddings
// of different models live in unrelated spaces, so the results would be meaningless.
struct ModelIdentity {
  std::string path;         // canonical absolute path of the checkpoint (file or folder)
  std::string config_json;  // config_to_json of the loaded model
  std::string precision;    // "fp32", "bf16" or "int8" (recorded for information; not compared)
};
ModelIdentity identify_model(const Model& model, const std::string& checkpoint_path, Precision precision);
// Throws clip::Error naming the index folder and what differs (path or architecture).
void check_same_model(const ModelIdentity& index_model, const ModelIdentity& given, const std::string& index_dir);

// Where the images come from: a folder (searched recursively for .jpg .jpeg .png .webp .bmp .gif),
// a CSV file with a header and a column of paths relative to the CSV file's folder, or WebDataset
// tar shards (a path or a brace pattern, e.g. shards/{00000..00009}.tar; every image member is a
// row).
struct Source {
  std::string kind;        // "dir", "csv" or "shards"
  std::string path;        // dir, csv: canonical absolute path; shards: the pattern, made absolute
  std::string csv_column;  // csv: the column of paths ("" = the first of path, filepath, image)
};
// From the --images argument: a folder, a .csv file, or a shard path or pattern (a name ending in
// .tar, .tar.gz or .tgz, or with braces). Throws clip::Error for anything else, and for a pattern
// none of whose shards exists.
Source source_from_argument(const std::string& argument, const std::string& csv_column);

// One indexed image. Change detection compares size and mtime first and the content hash only
// when they differ (a touched but unchanged file keeps its embedding). A member of a tar shard is
// recorded as "<canonical shard path>#<member name>", with the member's size, the shard's mtime
// and the member's hash (so the same image keeps its embedding when its shard is rewritten).
struct FileRecord {
  std::string path;  // absolute
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string sha256;  // hex
};

// A tar shard read to its end in one generation, with the size and mtime it had then: `update`
// keeps the rows of a shard still matching them without reading it again.
struct ShardState {
  std::string path;  // canonical
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

// ---- building and updating -----------------------------------------------------------------

struct BuildOptions {
  IndexParams params;
  int batch_size = 32;           // images per forward pass
  int chunk_size = 256;          // embedded files per chunk (the unit an interrupted run keeps, and an update rewrites)
  Storage storage = Storage::kF32;  // how a new index stores its embeddings (update keeps the index's)
  int threads = 0;               // decoding threads (0: all cores)
  ProgressCallback on_progress;  // stages "embedding" (folders, CSV files) and "shards" (null: not reported)
  // Notes as they happen: a resumed run, discarded work of another model, a damaged work chunk
  // (null: not reported). Skipped files and the totals are in the returned BuildReport.
  NoteCallback on_note;
};

struct BuildReport {
  int64_t indexed = 0;   // rows in the new generation
  int64_t embedded = 0;  // files run through the model in this run
  int64_t reused = 0;    // rows whose embedding was reused (unchanged, or finished before)
  int64_t removed = 0;   // rows of the previous generation whose file is gone
  std::vector<SkippedFile> skipped;
  int64_t generation = 0;
};

// Builds a new index in out_dir (created if needed). A folder that already holds an index is an
// error (use update_index); one holding only an interrupted build of the same model resumes it.
BuildReport build_index(const Model& model, const ModelIdentity& identity, const Source& source,
                        const std::string& out_dir, const BuildOptions& options);

// Re-lists the index's source: embeds new and changed files, drops deleted ones, retries skipped
// ones, and writes the next generation. `model` must be the index's model (checked).
// options.params is ignored: the index keeps the parameters it was built with.
BuildReport update_index(const Model& model, const ModelIdentity& identity, const std::string& index_dir,
                         const BuildOptions& options);

// ---- building on many processes and machines (docs/search.md, "Building on many machines") ----

// Rank `rank` of `world` (0 <= rank < world) embeds its share of the source: a contiguous slice of
// the sorted listing (files, or tar shards), into out_dir/parts/rank-R-of-W/, in chunks, and marks
// it finished. Restartable alone: run again, it reuses its finished chunks (and does nothing when
// finished). Ranks share out_dir (on a shared file system across machines), each writing only its
// part; `merge_index_parts` then publishes the index.
BuildReport build_index_part(const Model& model, const ModelIdentity& identity, const Source& source,
                             const std::string& out_dir, const BuildOptions& options, int rank, int world);

// Checks that every rank of one build finished, with the same model, storage, source, index
// parameters and listing (clip::Error naming the rank and what differs otherwise), moves their
// chunks into the index in rank order (the rows of a one-process build, in its order) and
// publishes generation 1. Needs no model. Can be run again after an interruption.
BuildReport merge_index_parts(const std::string& index_dir, const NoteCallback& note);

// ---- moving collections in and out (docs/search.md, "Import and export") ---------------------

// Precomputed embeddings: a float32 or float16 .npy [N, D], or a folder of clip-retrieval chunks
// (FOLDER/img_emb/img_emb_0.npy, img_emb_1.npy, ... or the same directly in FOLDER, numbered from 0
// without gaps), with a parallel list of N paths or ids in chunk order: a .jsonl file (objects
// with "path", optionally "size", "mtime_ns", "sha256", as `export` writes), a .csv file (its
// --csv-column) or any other file as plain text, one path a line.
struct ImportOptions {
  IndexParams params;
  std::string embeddings;  // the .npy file or the chunk folder
  std::string paths;       // the list
  std::string csv_column;  // for a .csv list ("" = the first of path, filepath, image)
  Storage storage = Storage::kF32;
};
// Writes generation 1 of a new index in out_dir (as build_index does, with source kind "import")
// from the given embeddings (L2-normalized on the way in), as computed by the model `identity`
// (its embedding dimension `dim` must be the files'). Throws clip::Error naming the file and field
// when counts, dimensions or dtypes disagree.
BuildReport import_index(const ModelIdentity& identity, int dim, const ImportOptions& options,
                         const std::string& out_dir);

// Writes OUT/embeddings.npy (float32 [N, D], row i = id i) and OUT/metadata.jsonl (row i: "path",
// "size", "mtime_ns", "sha256") of the index's current generation, each to a temporary name, then
// renamed. Returns N.
int64_t export_index(const std::string& index_dir, const std::string& out_dir);

// ---- reading and searching -----------------------------------------------------------------

// One chunk of a generation's rows: an embeddings file (float32 or float16 [rows, dim]) and its
// metadata file (one JSON line a row), written once and shared by every generation that lists it.
// An update that removes or replaces some of a chunk's rows lists them as dropped instead of
// rewriting the chunk (docs/search.md, "Storage").
struct ChunkEntry {
  std::string embeddings, metadata;  // file names inside the index folder
  int64_t rows = 0;                  // rows in the files
  std::vector<int64_t> dropped;      // sorted, unique row numbers in [0, rows) not in this generation
  int64_t live() const { return rows - static_cast<int64_t>(dropped.size()); }
};

struct Manifest {
  int64_t generation = 0;
  ModelIdentity model;
  std::string model_config_file;  // absolute path of the model config saved in the index
  Source source;
  IndexParams params;
  Storage storage = Storage::kF32;
  int dim = 0;
  int64_t count = 0;                // live rows of all chunks; image id i is the i-th live row in chunk order
  std::vector<ChunkEntry> chunks;   // in row order
  std::string faiss_file, skipped_file;  // names inside the folder
  // Chunk files of the previous generation that this one no longer lists: kept until the next
  // generation is published, for readers that opened the previous one.
  std::vector<std::string> previous_files;
  std::vector<ShardState> shards;  // source kind "shards": the shards read to their end
};
// Reads and validates INDEX/manifest.json; throws clip::Error naming the file and the field.
Manifest read_manifest(const std::string& index_dir);

// Loads the model the index was built with (its checkpoint, the config saved in the index, its
// precision).
Model load_index_model(const Manifest& manifest, torch::Device device = torch::kCPU);

struct Hit {
  int64_t id = 0;   // row in the index (also the /images/<id> of the HTTP service)
  float score = 0;  // inner product of normalized embeddings (cosine similarity)
  std::string path;
};

// A loaded index generation: metadata and the FAISS index. Searching is thread-safe.
// How a reader opens an index.
struct OpenOptions {
  // Memory-map the IVF inverted lists (FAISS's IO_FLAG_MMAP) instead of reading them: the index
  // may be larger than memory; answers are the same. Flat and HNSW indexes are always read.
  bool mmap = false;
  int rerank = -1;  // -1: the manifest's; 0: off; K: re-score the top K candidates by exact cosine
};

class ImageIndex {
 public:
  static ImageIndex open(const std::string& index_dir, const OpenOptions& options = {});
  ImageIndex(ImageIndex&&) noexcept;
  ImageIndex& operator=(ImageIndex&&) noexcept;
  ~ImageIndex();

  const Manifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  int64_t size() const { return manifest_.count; }
  int dim() const { return manifest_.dim; }
  // Row `id`'s record, read from its chunk's metadata (held or mapped, see GenerationRecords);
  // throws clip::Error when id is out of range.
  FileRecord record(int64_t id) const;
  // The encoded image of a row as it is now: the file, or the member read from its tar shard.
  // Throws clip::Error naming the path when it can no longer be read.
  std::string read_image(int64_t id) const;

  // The k best rows for one query embedding (dim floats; normalized here), best first.
  std::vector<Hit> search(const float* query, int k) const;
  // The same for a [1, dim] or [dim] tensor.
  std::vector<Hit> search(const torch::Tensor& query, int k) const;

 private:
  ImageIndex() = default;
  std::string dir_;
  Manifest manifest_;
  std::unique_ptr<GenerationRecords> records_;
  std::unique_ptr<faiss::Index> faiss_;
  int rerank_ = 0;
  std::unique_ptr<GenerationRows> embeddings_;  // mapped when rerank_ > 0
};

// ---- duplicates -----------------------------------------------------------------------------

struct DuplicateMember {
  int64_t id = 0;
  std::string path;
  float best_score = 0;  // near groups: the highest cosine to another member of the group
};
struct DuplicateGroup {
  std::string sha256;                    // exact groups: the content they share; near groups: ""
  std::vector<DuplicateMember> members;  // by id
};
struct Duplicates {
  std::vector<DuplicateGroup> exact;  // rows with the same sha256, in groups of two or more
  // Connected groups of rows whose embeddings have cosine >= threshold (FAISS range search over
  // the stored embeddings, exact), leaving out groups whose rows all have one content (those are
  // in `exact`).
  std::vector<DuplicateGroup> near;
};
// threshold in (0, 1]. Costs N² · D multiply-adds (about a minute for 100k images at D = 512 here)
// and N × D × 4 bytes of memory for the flat search structure.
Duplicates find_duplicates(const ImageIndex& index, float threshold);

}  // namespace clip::index
