// `clip index import` and `clip index export`: moving embeddings computed elsewhere (clip-retrieval's
// img_emb chunks, another CLIP++ index's export) in without re-embedding, and an index's rows out.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string_view>

#include "clip/error.h"
#include "clip/index.h"
#include "index/index_folder.h"
#include "index/manifest.h"
#include "index/chunk_files.h"
#include "index/generation_rows.h"
#include "index/path_list.h"
#include "util/file_io.h"
#include "util/half.h"
#include "util/npy.h"

namespace fs = std::filesystem;

namespace clip::index {
namespace {

// The embedding files to import, in row order: the .npy itself, or the numbered chunks of a
// clip-retrieval folder (FOLDER/img_emb/ or FOLDER), which must run from 0 without a gap.
std::vector<std::string> embedding_files(const std::string& argument) {
  std::error_code ec;
  if (fs::is_regular_file(argument, ec)) return {argument};
  if (!fs::is_directory(argument, ec))
    throw Error(argument + ": no such file or folder (expected a .npy file or a folder of img_emb_N.npy chunks)",
                ErrorKind::kNotFound);
  const std::string folder = fs::is_directory(argument + "/img_emb", ec) ? argument + "/img_emb" : argument;
  static const std::regex kChunk(R"(img_emb_(\d{1,9})\.npy)");
  std::map<int64_t, std::string> chunks;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (std::regex_match(name, m, kChunk)) chunks[std::stoll(m[1])] = entry.path().string();
  }
  if (ec) throw Error(folder + ": cannot list the folder: " + ec.message(), ErrorKind::kIo);
  if (chunks.empty()) throw Error(folder + ": holds no img_emb_N.npy chunk", ErrorKind::kNotFound);
  std::vector<std::string> files;
  for (const auto& [number, path] : chunks) {
    if (number != static_cast<int64_t>(files.size()))
      throw Error(folder + ": img_emb_" + std::to_string(files.size()) +
                      ".npy is missing (the chunks found run to img_emb_" + std::to_string(chunks.rbegin()->first) +
                      ".npy)",
                  ErrorKind::kNotFound);
    files.push_back(path);
  }
  return files;
}

// One embedding file's header, read through `fd`, checked to be float32 or float16 [n, dim].
struct ChunkHeader {
  util::NpyHeader npy;
  int64_t rows = 0;
};

ChunkHeader read_chunk_header(const util::ReadOnlyFile& file, int dim) {
  const std::string& path = file.path();
  const uint64_t size = file.size();
  std::string prefix(static_cast<size_t>(std::min<uint64_t>(size, util::kMaxNpyHeaderBytes)), '\0');
  file.read_at(0, prefix.data(), prefix.size(), "the .npy header");
  ChunkHeader h;
  h.npy = util::parse_npy_header(prefix, size, path);
  if (h.npy.dtype != "<f4" && h.npy.dtype != "<f2")
    throw Error(path + ": dtype " + h.npy.dtype + ", expected float32 (<f4) or float16 (<f2) embeddings",
                ErrorKind::kUnsupported);
  if (h.npy.shape.size() != 2 || h.npy.shape[1] != dim)
    throw Error(path + ": shape (" +
                [&] {
                  std::string dims;
                  for (int64_t d : h.npy.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
                  return dims;
                }() +
                "), expected [N, " + std::to_string(dim) + "] (the model's embedding dimension)");
  if (h.npy.data_offset + h.npy.data_bytes != size)
    throw Error(path + ": " + std::to_string(size - h.npy.data_offset - h.npy.data_bytes) +
                " bytes follow the data its header describes");
  h.rows = h.npy.shape[0];
  return h;
}

// Rows of one imported chunk file per index chunk, at most: an index chunk is the unit an update
// keeps or drops, and a bounded one keeps each file's memory map and rename small.
constexpr int64_t kImportChunkRows = int64_t{1} << 17;

// Copies rows [first_row, first_row + count_rows) of a chunk to `out` as float32, each
// L2-normalized, a block of rows at a time (the memory of a block, whatever the chunk's size).
// Rows already of unit length (|‖x‖² − 1| < 1e-6) are kept bit for bit, so an export imported
// again searches exactly as its index. A zero or non-finite row is an error naming the file and
// row (it has no direction to search by).
void copy_rows(const util::ReadOnlyFile& file, const ChunkHeader& h, int dim, int64_t first_row, int64_t count_rows,
               ChunkFileWriter& out) {
  const bool half = h.npy.dtype == "<f2";
  const size_t in_row = static_cast<size_t>(dim) * (half ? 2 : 4);
  const int64_t block = std::max<int64_t>(1, (int64_t{16} << 20) / static_cast<int64_t>(in_row));  // ~16 MB
  std::string data;
  std::vector<float> rows;
  for (int64_t first = first_row; first < first_row + count_rows; first += block) {
    const int64_t count = std::min(block, first_row + count_rows - first);
    data.resize(static_cast<size_t>(count) * in_row);
    const uint64_t offset = h.npy.data_offset + static_cast<uint64_t>(first) * in_row;
    file.read_at(offset, data.data(), data.size(), "the embeddings");
    rows.resize(static_cast<size_t>(count) * dim);
    for (int64_t i = 0; i < count; ++i) {
      float* row = rows.data() + i * dim;
      double norm = 0;
      for (int j = 0; j < dim; ++j) {
        const size_t at = static_cast<size_t>(i) * dim + j;
        if (half) {
          uint16_t v;
          std::memcpy(&v, data.data() + at * 2, 2);
          row[j] = util::half_to_float(v);
        } else {
          std::memcpy(&row[j], data.data() + at * 4, 4);
        }
        norm += double(row[j]) * row[j];
      }
      if (!(norm > 0) || !std::isfinite(norm))
        throw Error(file.path() + ": row " + std::to_string(first + i) + " is zero or not finite (cannot be normalized)");
      if (std::abs(norm - 1.0) >= 1e-6) {
        const double scale = 1.0 / std::sqrt(norm);
        for (int j = 0; j < dim; ++j) row[j] = static_cast<float>(row[j] * scale);
      }
    }
    out.append(rows.data(), count);
  }
}

}  // namespace

BuildReport import_index(const ModelIdentity& identity, int dim, const ImportOptions& o, const std::string& out_dir) {
  if (dim < 1 || dim > kMaxDim)
    throw Error("the model's embedding dimension " + std::to_string(dim) + " is not usable");
  o.params.validate_for(dim);
  const std::vector<std::string> files = embedding_files(o.embeddings);
  // Every header first: counts, dimensions and dtypes are checked before any row is read.
  std::vector<util::ReadOnlyFile> opened;
  std::vector<ChunkHeader> headers;
  int64_t total = 0;
  for (const std::string& f : files) {
    opened.emplace_back(f);
    headers.push_back(read_chunk_header(opened.back(), dim));
    total += headers.back().rows;
    if (total > kMaxCount)
      throw Error(f + ": the chunks hold more than " + std::to_string(kMaxCount) + " rows", ErrorKind::kTooLarge);
  }
  PathList paths(o.paths, o.csv_column, total);  // checked through before anything is written
  prepare_new_index_folder(out_dir);
  FolderLock lock(out_dir);
  remove_unused_files(out_dir, nullptr);
  Manifest m;
  m.generation = 1;
  m.model = identity;
  m.source = {"import", fs::absolute(o.embeddings).lexically_normal().string(), ""};
  m.params = o.params;
  m.storage = o.storage;
  m.dim = dim;
  // The normalized rows go straight to the index's chunk files, so the collection is never held in
  // memory; a refusal part way removes the chunks written so far.
  try {
    int64_t number = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      for (int64_t first = 0; first < headers[i].rows; first += kImportChunkRows) {
        const int64_t count = std::min(kImportChunkRows, headers[i].rows - first);
        const std::string stem = chunk_stem(out_dir + "/chunk", 1, number++);
        ChunkFileWriter writer(stem, count, dim, o.storage);
        copy_rows(opened[i], headers[i], dim, first, count, writer);
        writer.finish(paths.next(count));
        m.chunks.push_back(chunk_entry(stem, count));
      }
    }
    publish_generation(out_dir, m, {}, nullptr);
  } catch (...) {
    if (!util::file_exists(out_dir + "/" + kManifestName)) remove_unused_files(out_dir, nullptr);
    throw;
  }
  BuildReport report;
  report.indexed = total;
  report.generation = 1;
  return report;
}

int64_t export_index(const std::string& index_dir, const std::string& out_dir) {
  const Manifest m = read_manifest(index_dir);
  const GenerationRows rows = GenerationRows::open(index_dir, m.chunks, m.dim);
  util::create_directories(out_dir, "the export folder");
  // The header, then the rows a block at a time: nothing of the size of the collection is held.
  ChunkFileWriter writer(out_dir + "/embeddings", m.count, m.dim, Storage::kF32);
  constexpr int64_t kBlock = 4096;
  std::vector<float> block;
  for (int64_t begin = 0; begin < m.count; begin += kBlock) {
    const int64_t n = std::min(kBlock, m.count - begin);
    block.resize(static_cast<size_t>(n) * static_cast<size_t>(m.dim));
    rows.read(begin, n, block.data());
    writer.append(block.data(), n);
  }
  writer.finish_embeddings();
  // The metadata a chunk at a time (never the collection's records at once), to a temporary name
  // renamed when complete.
  const std::string metadata = out_dir + "/metadata.jsonl", tmp = util::temp_path_for(metadata);
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    for (const ChunkEntry& c : m.chunks) out << records_to_jsonl(read_live_chunk_records(index_dir, c));
    out.close();
    if (!out) throw Error(tmp + ": cannot write the metadata", ErrorKind::kIo);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  util::publish_file(tmp, metadata);
  return m.count;
}

}  // namespace clip::index
