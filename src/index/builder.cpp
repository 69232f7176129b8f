// build_index and update_index: list the source, reuse what is known, embed the rest in chunks,
// then write a new generation (files first, manifest last) and remove the old one.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "clip/error.h"
#include "clip/image.h"
#include "clip/index.h"
#include "index/chunk_assembly.h"
#include "index/chunk_files.h"
#include "index/embedding_cache.h"
#include "index/faiss_store.h"
#include "index/file_hash.h"
#include "index/index_folder.h"
#include "index/manifest.h"
#include "index/parts.h"
#include "index/shard_members.h"
#include "index/sources.h"
#include "model/image_batch.h"
#include "util/file_io.h"
#include "util/npy.h"
#include "util/progress.h"
#include "util/thread_pool.h"
#include "util/utf8.h"

#include <faiss/Index.h>

namespace fs = std::filesystem;

namespace clip::index {
namespace {

// A record to embed. A file's bytes are read by the decoding worker; a tar member's bytes were
// read with its shard (a tar is read in order, not seeked into member by member).
struct PendingFile {
  std::string path;                  // the record path
  FileStat stat;                     // the size and mtime its record gets
  std::optional<std::string> bytes;  // a tar member's encoded image
  int64_t slot = 0;                  // its place in the listing (files) or in its shard (members): picks its batch
};

// A row the new generation holds if the cache knows it with this size and mtime by the end.
struct PlannedRow {
  std::string path;
  FileStat stat;
  bool restat = false;  // a file: stat it again at the end (one changed during the run waits for the next update)
};

// What a decoding worker made of one file.
struct Decoded {
  std::string sha256;
  size_t known_row = EmbeddingCache::kNone;  // same content already embedded
  std::vector<float> input;                  // the model input when it must be embedded
  std::string error;                         // why the file is skipped
};

// What listing the source found: the rows to write and the paths present (for `removed`).
struct Plan {
  std::vector<PlannedRow> rows;
  std::unordered_set<std::string> present;
  std::vector<ShardState> shards;  // shards read to their end (or unchanged)
};

class Run {
 public:
  Run(const Model& model, const ModelIdentity& identity, const std::string& dir, const BuildOptions& options,
      Storage storage)
      : model_(model),
        identity_(identity),
        dir_(dir),
        options_(options),
        cache_(model.config().embed_dim),
        pool_(options.threads),
        storage_(storage) {
    pre_ = model.image_preprocess();
  }

  BuildReport execute(const Source& source, const IndexParams& params, const Manifest* previous) {
    BuildReport report;
    std::vector<FileRecord> old;
    if (previous) {
      load_generation(cache_, dir_, *previous);
      old = read_metadata(dir_, *previous);
    }
    open_work(dir_ + "/work", "");
    const Plan plan = embed(source, list_source(source), previous, old, report);
    std::vector<CandidateChunk> candidates;
    if (previous)
      for (const ChunkEntry& c : previous->chunks) candidates.push_back({dir_, c, read_chunk_records(dir_, c), true});
    report.generation = previous ? previous->generation + 1 : 1;
    Manifest m;
    m.generation = report.generation;
    m.model = identity_;
    m.source = source;
    m.params = params;
    m.storage = storage_;
    m.dim = cache_.dim();
    m.shards = plan.shards;
    PendingMoves moves;
    m.chunks = assemble(dir_, m.generation, std::move(candidates), plan, &moves);
    for (const ChunkEntry& c : m.chunks) report.indexed += c.live();
    report.reused = report.indexed - report.embedded;
    for (const auto& r : old)  // rows of the previous generation whose file or member is gone
      if (!plan.present.count(r.path)) ++report.removed;
    publish_generation(dir_, std::move(m), report.skipped, previous, moves);
    return report;
  }

  // One rank of a distributed build: its share of the listing into `part` (see build_index_part).
  BuildReport execute_part(const Source& source, const IndexParams& params, int rank, int world,
                           const std::string& part) {
    SourceListing listing = list_source(source);
    nlohmann::json state = {{"source", source_to_json(source)},
                            {"params", params_to_json(params)},
                            {"precision", identity_.precision},
                            {"rank", rank},
                            {"world_size", world},
                            {"batch", options_.batch_size},
                            {"listing", listing_summary(listing)}};
    const std::string done_path = part + "/" + kPartDoneName;
    if (work_state_matches(part, identity_, storage_, cache_.dim(), state.dump()) && util::file_exists(done_path)) {
      if (options_.on_note) options_.on_note("note: " + part + " is finished already; nothing to do");
      return report_of_done_part(done_path);
    }
    remove_assembled_chunks(part);  // new chunks of an assembly interrupted before its done file
    open_work(part, state.dump());
    // A contiguous share of the sorted listing, so that the parts in rank order are the listing's
    // order (that of a one-process build). Rows the listing names but cannot find go to rank 0.
    // Shares of files start on batch boundaries (see embed_pending); a shard's members are batched
    // from its start, so shares of shards need no rounding.
    const size_t n = listing.files.size();
    const size_t unit = source.kind == "shards" ? 1 : static_cast<size_t>(options_.batch_size);
    auto boundary = [&](int r) {
      if (r == world) return n;
      return std::min(n, (n * static_cast<size_t>(r) / static_cast<size_t>(world) + unit / 2) / unit * unit);
    };
    const size_t first = boundary(rank), last = boundary(rank + 1);
    first_slot_ = static_cast<int64_t>(first);
    listing.files = std::vector<std::string>(listing.files.begin() + first, listing.files.begin() + last);
    if (rank != 0) listing.missing.clear();
    BuildReport report;
    const Plan plan = embed(source, std::move(listing), nullptr, {}, report);
    // The part's chunks keep their work names (a rank killed before its done file is written
    // finds them again); `merge` gives them their index names.
    PendingMoves moves;
    std::vector<ChunkEntry> chunks = assemble(part, 1, {}, plan, &moves);
    for (ChunkEntry& c : chunks)
      for (std::string* name : {&c.embeddings, &c.metadata})
        if (const auto it = moves.find(*name); it != moves.end()) *name = fs::path(it->second).filename().string();
    for (const ChunkEntry& c : chunks) report.indexed += c.live();
    report.reused = report.indexed - report.embedded;
    report.generation = 0;  // none yet: `merge` publishes generation 1
    const nlohmann::json done = {{"chunks", chunks_to_json(chunks)},
                                 {"skipped", skipped_to_json(report.skipped)},
                                 {"shards", shards_to_json(plan.shards)},
                                 {"indexed", report.indexed},
                                 {"embedded", report.embedded}};
    util::write_file_atomic(done_path, done.dump(1) + "\n");
    return report;
  }

 private:
  // Opens (or resumes) the work folder of this run; `extra_state` distinguishes a rank's part.
  void open_work(const std::string& work_dir, const std::string& extra_state) {
    work_dir_ = work_dir;
    int next_chunk = 0;
    work_chunks_ = open_work_dir(cache_, work_dir, identity_, storage_, extra_state, &next_chunk, options_.on_note);
    int64_t resumed = 0;
    for (const WorkChunk& w : work_chunks_) resumed += static_cast<int64_t>(w.records.size());
    if (resumed > 0 && options_.on_note)
      options_.on_note("resuming: " + std::to_string(resumed) + " embeddings from an interrupted run are reused");
    next_chunk_ = next_chunk;
  }

  // Embeds what the cache does not know, and saves the last chunk.
  Plan embed(const Source& source, SourceListing listing, const Manifest* previous, const std::vector<FileRecord>& old,
             BuildReport& report) {
    Plan plan = source.kind == "shards" ? embed_shards(std::move(listing), previous, old, report)
                                        : embed_files(std::move(listing), report);
    flush_chunk();
    return plan;
  }

  // The chunks of the new generation (see assemble_chunks): `candidates` (a previous
  // generation's), then this run's work chunks, then every planned row no kept chunk holds.
  std::vector<ChunkEntry> assemble(const std::string& into, int64_t generation, std::vector<CandidateChunk> candidates,
                                   const Plan& plan, PendingMoves* moves) {
    std::vector<WantedRow> wanted;
    for (const PlannedRow& planned : plan.rows) {
      FileStat stat = planned.stat;
      if (planned.restat) {
        try {
          stat = stat_file(planned.path);
        } catch (const Error&) {
          continue;  // vanished during the run; it was reported as skipped or is picked up by the next update
        }
      }
      wanted.push_back({planned.path, stat});
    }
    for (WorkChunk& w : work_chunks_)
      candidates.push_back({work_dir_, chunk_entry(w.stem, static_cast<int64_t>(w.records.size())),
                            std::move(w.records), false});
    work_chunks_.clear();
    return assemble_chunks(into, generation, candidates, wanted, cache_, options_.chunk_size, storage_, moves);
  }

 private:
  // A folder or CSV: stat every file, embed those the cache does not know unchanged.
  Plan embed_files(SourceListing listing, BuildReport& report) {
    report.skipped = listing.missing;
    Plan plan;
    std::vector<PendingFile> pending;
    for (size_t i = 0; i < listing.files.size(); ++i) {
      const std::string& path = listing.files[i];
      plan.present.insert(path);
      if (!util::is_valid_utf8(path)) {
        report.skipped.push_back({path, "the file name is not valid UTF-8 (the index stores paths as JSON text)"});
        continue;
      }
      FileStat st;
      try {
        st = stat_file(path);
      } catch (const Error& e) {
        report.skipped.push_back({path, e.what()});
        continue;
      }
      plan.rows.push_back({path, st, true});
      if (cache_.find_unchanged(path, st) == EmbeddingCache::kNone)
        pending.push_back({path, st, std::nullopt, first_slot_ + static_cast<int64_t>(i)});
    }
    util::StageProgress progress(options_.on_progress, "embedding", static_cast<int64_t>(pending.size()));
    embed_pending(pending, report, &progress);
    return plan;
  }

  // Tar shards, one at a time (only one shard's images are held in memory). A shard whose size and
  // mtime are those recorded by the previous generation keeps its rows and its skipped entries
  // unread; any other is read, and its members are embedded unless their content is known.
  Plan embed_shards(SourceListing listing, const Manifest* previous, const std::vector<FileRecord>& old,
                    BuildReport& report) {
    report.skipped = listing.missing;
    std::unordered_map<std::string, FileStat> known;
    std::unordered_map<std::string, std::vector<const FileRecord*>> old_rows;
    std::unordered_map<std::string, std::vector<SkippedFile>> old_skipped;
    if (previous) {
      for (const ShardState& s : previous->shards) known[s.path] = {s.size, s.mtime_ns};
      std::string shard, member;
      for (const FileRecord& r : old)
        if (split_member_record_path(r.path, &shard, &member)) old_rows[shard].push_back(&r);
      for (SkippedFile& s : previous_skipped(*previous))
        old_skipped[split_member_record_path(s.path, &shard, &member) ? shard : s.path].push_back(std::move(s));
    }
    Plan plan;
    util::StageProgress progress(options_.on_progress, "shards", static_cast<int64_t>(listing.files.size()));
    for (const std::string& shard : listing.files) {
      FileStat st;
      try {
        st = stat_file(shard);
      } catch (const Error& e) {
        report.skipped.push_back({shard, e.what()});
        progress.advance(1);
        continue;
      }
      const auto k = known.find(shard);
      if (k != known.end() && k->second.size == st.size && k->second.mtime_ns == st.mtime_ns) {
        for (const FileRecord* r : old_rows[shard]) {
          plan.rows.push_back({r->path, {r->size, r->mtime_ns}, false});
          plan.present.insert(r->path);
        }
        const auto& skipped = old_skipped[shard];
        report.skipped.insert(report.skipped.end(), skipped.begin(), skipped.end());
        plan.shards.push_back({shard, st.size, st.mtime_ns});
        progress.advance(1);
        continue;
      }
      ShardImages contents = read_shard_images(shard);
      report.skipped.insert(report.skipped.end(), contents.skipped.begin(), contents.skipped.end());
      std::vector<PendingFile> pending;
      int64_t slot = 0;
      for (ShardImage& image : contents.images) {
        ++slot;
        const std::string path = member_record_path(shard, image.member);
        plan.present.insert(path);
        if (!util::is_valid_utf8(path)) {
          report.skipped.push_back({path, "the member name is not valid UTF-8 (the index stores paths as JSON text)"});
          continue;
        }
        // The member's own size with the shard's mtime: a rewritten shard is a new mtime for all.
        const FileStat member_stat{image.size, st.mtime_ns};
        plan.rows.push_back({path, member_stat, false});
        if (cache_.find_unchanged(path, member_stat) == EmbeddingCache::kNone)
          pending.push_back({path, member_stat, std::move(image.bytes), slot - 1});
      }
      embed_pending(pending, report, nullptr);
      if (contents.complete) plan.shards.push_back({shard, st.size, st.mtime_ns});
      progress.advance(1);
    }
    return plan;
  }

  // The skipped entries of the previous generation; an unreadable list only costs its shards a rereading.
  std::vector<SkippedFile> previous_skipped(const Manifest& previous) const {
    const std::string path = dir_ + "/" + previous.skipped_file;
    try {
      return skipped_from_jsonl(util::read_file(path), path);
    } catch (const Error&) {
      return {};
    }
  }

  // Embeds the files in batches, decoding on the pool, and saves each finished chunk.
  //
  // Which rows share a forward pass is fixed by the listing, so that any run embedding a file gives
  // it the same bits (the sums of a matrix product can depend on the rows beside it): a batch holds
  // the pending files of slots [k·B, (k+1)·B) and is padded to B rows. A rank's share starts on a
  // batch boundary, and a resumed run starts after whole batches, so a distributed or interrupted
  // build embeds every file exactly as one uninterrupted process does.
  void embed_pending(std::vector<PendingFile>& pending, BuildReport& report, util::StageProgress* progress) {
    const int dim = cache_.dim();
    const size_t batch = static_cast<size_t>(options_.batch_size);
    std::vector<float> row;
    for (size_t begin = 0, end = 0; begin < pending.size(); begin = end) {
      const int64_t group = pending[begin].slot / static_cast<int64_t>(batch);
      for (end = begin + 1; end < pending.size() && end - begin < batch &&
                            pending[end].slot / static_cast<int64_t>(batch) == group;)
        ++end;
      const size_t count = end - begin;
      std::vector<Decoded> decoded(count);
      pool_.parallel_for(count, [&](size_t i) { decode(pending[begin + i], decoded[i]); });
      std::vector<size_t> to_encode;
      for (size_t i = 0; i < count; ++i)
        if (decoded[i].error.empty() && decoded[i].known_row == EmbeddingCache::kNone) to_encode.push_back(i);
      torch::Tensor features;
      if (!to_encode.empty()) {
        std::vector<const std::vector<float>*> inputs;
        for (size_t i : to_encode) inputs.push_back(&decoded[i].input);
        while (inputs.size() < batch) inputs.push_back(inputs.front());  // padding: always B rows
        const torch::Tensor input = model::stack_image_inputs(inputs, pre_.size);
        features =
            normalize_rows(model_.encode_image(input.to(model_.device()))).to(torch::kCPU, torch::kFloat).contiguous();
      }
      size_t next_encoded = 0;
      for (size_t i = 0; i < count; ++i) {
        PendingFile& f = pending[begin + i];
        f.bytes.reset();  // a tar member's image is no longer needed
        Decoded& d = decoded[i];
        if (!d.error.empty()) {
          report.skipped.push_back({f.path, d.error});
          continue;
        }
        if (d.known_row != EmbeddingCache::kNone) {
          row.resize(static_cast<size_t>(dim));
          cache_.copy_embedding(d.known_row, row.data());
        } else {
          const float* computed = features[static_cast<int64_t>(next_encoded++)].data_ptr<float>();
          row.assign(computed, computed + dim);
          round_to_storage(row.data(), dim, storage_);  // what the chunk keeps, reused as it will be read
          ++report.embedded;
        }
        const FileRecord record{f.path, f.stat.size, f.stat.mtime_ns, d.sha256};
        chunk_records_.push_back(record);
        chunk_rows_.insert(chunk_rows_.end(), row.begin(), row.end());
        cache_.add(record, row.data());
      }
      if (progress) progress->advance(static_cast<int64_t>(count));
      if (chunk_records_.size() >= static_cast<size_t>(options_.chunk_size)) flush_chunk();
    }
  }

  // Saves the embedded rows not yet in a chunk (what an interrupted run keeps).
  void flush_chunk() {
    if (chunk_records_.empty()) return;
    work_chunks_.push_back(
        write_work_chunk(work_dir_, next_chunk_++, chunk_records_, chunk_rows_, cache_.dim(), storage_));
    cache_.seal(work_chunks_.back().stem + ".npy");  // its rows are read from the file from now on
    chunk_records_.clear();
    chunk_rows_.clear();
  }

  // On a worker thread: read, hash, and (unless the content is known) preprocess one file.
  void decode(const PendingFile& f, Decoded& d) const {
    try {
      std::string file_bytes;
      if (!f.bytes) file_bytes = util::read_file(f.path);
      const std::string_view bytes = f.bytes ? std::string_view(*f.bytes) : std::string_view(file_bytes);
      d.sha256 = sha256_hex(bytes);
      d.known_row = cache_.find_by_hash(d.sha256);
      if (d.known_row != EmbeddingCache::kNone) return;
      d.input = image::preprocess(bytes, f.path, pre_).input;
    } catch (const std::exception& e) {
      d.error = e.what();
    }
  }

  const Model& model_;
  const ModelIdentity& identity_;
  std::string dir_;
  BuildOptions options_;
  EmbeddingCache cache_;
  util::ThreadPool pool_;
  image::PreprocessOptions pre_;
  Storage storage_;
  std::string work_dir_;  // INDEX/work, or a rank's part
  int64_t first_slot_ = 0;  // a rank's share: the listing position of its first file
  int next_chunk_ = 0;
  std::vector<WorkChunk> work_chunks_;     // this run's finished chunks, and an interrupted run's
  std::vector<FileRecord> chunk_records_;  // embedded rows not yet saved in a work chunk
  std::vector<float> chunk_rows_;
};

void validate_options(const BuildOptions& o) {
  if (o.batch_size < 1) throw Error("batch size " + std::to_string(o.batch_size) + ": expected at least 1");
  if (o.chunk_size < 1) throw Error("chunk size " + std::to_string(o.chunk_size) + ": expected at least 1");
}

}  // namespace

BuildReport build_index(const Model& model, const ModelIdentity& identity, const Source& source,
                        const std::string& out_dir, const BuildOptions& options) {
  validate_options(options);
  if (model.config().embed_dim <= 0) throw Error("the model has no embedding dimension");
  options.params.validate_for(model.config().embed_dim);
  prepare_new_index_folder(out_dir);
  FolderLock lock(out_dir);
  remove_unused_files(out_dir, nullptr);  // an interrupted build's temporary and unpublished files
  Run run(model, identity, out_dir, options, options.storage);
  return run.execute(source, options.params, nullptr);
}

BuildReport build_index_part(const Model& model, const ModelIdentity& identity, const Source& source,
                             const std::string& out_dir, const BuildOptions& options, int rank, int world) {
  validate_options(options);
  if (world < 1 || rank < 0 || rank >= world)
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(world) +
                ": expected 0 <= rank < world size");
  if (model.config().embed_dim <= 0) throw Error("the model has no embedding dimension");
  options.params.validate_for(model.config().embed_dim);
  prepare_new_index_folder(out_dir);
  const std::string part = part_dir(out_dir, rank, world);
  util::create_directories(out_dir + "/parts", "the parts folder");
  // Beside the part, not in it: a part of another model is emptied while the lock is held.
  FolderLock lock(out_dir + "/parts", "rank-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".lock");
  Run run(model, identity, out_dir, options, options.storage);
  return run.execute_part(source, options.params, rank, world, part);
}

BuildReport update_index(const Model& model, const ModelIdentity& identity, const std::string& index_dir,
                         const BuildOptions& options) {
  validate_options(options);
  std::error_code ec;
  if (!fs::is_directory(index_dir, ec))
    throw Error(index_dir + ": no such folder (expected an index folder)", ErrorKind::kNotFound);
  FolderLock lock(index_dir);  // before reading: the manifest must not change under us
  const Manifest previous = read_manifest(index_dir);
  check_same_model(previous.model, identity, index_dir);
  if (previous.source.kind == "import")
    throw Error(index_dir + ": the index was imported from " + previous.source.path +
                "; it has no source to re-list (import the new embeddings into a new index)");
  remove_unused_files(index_dir, &previous);  // what an interrupted update left
  Run run(model, identity, index_dir, options, previous.storage);
  return run.execute(previous.source, previous.params, &previous);
}

}  // namespace clip::index
