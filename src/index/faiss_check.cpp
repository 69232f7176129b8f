#include "index/faiss_check.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "clip/error.h"

namespace clip::index {
namespace {

// Sequential reads of the file that never run past its end: every length is checked against
// the bytes left before anything is read or skipped.
class Cursor {
 public:
  Cursor(std::FILE* file, int64_t size, const std::string& path) : file_(file), left_(size), path_(path) {
    if (std::fseek(file_, 0, SEEK_SET) != 0) fail("cannot seek to the start");
  }

  template <typename T>
  T read(const char* what) {
    T value;
    read_bytes(&value, sizeof value, what);
    return value;
  }
  void read_bytes(void* out, uint64_t n, const char* what) {
    need(n, what);
    if (n > 0 && std::fread(out, 1, n, file_) != n) fail(std::string("read error in ") + what);
    left_ -= static_cast<int64_t>(n);
  }
  void skip(uint64_t n, const char* what) {
    need(n, what);
    if (n > 0 && std::fseek(file_, static_cast<long>(n), SEEK_CUR) != 0) fail(std::string("cannot skip ") + what);
    left_ -= static_cast<int64_t>(n);
  }
  // A FAISS vector: its element count (uint64), then the elements. Returns the count after checking
  // that that many elements of `item` bytes follow.
  uint64_t vector_count(uint64_t item, const char* what) {
    const uint64_t n = read<uint64_t>(what);
    if (n > static_cast<uint64_t>(left_) / item)
      fail(std::string(what) + " claims " + std::to_string(n) + " elements of " + std::to_string(item) +
           " bytes, but only " + std::to_string(left_) + " bytes follow");
    return n;
  }
  // Reads `n` elements of T in bounded pieces, calling visit(value, index) for each.
  template <typename T, typename Visit>
  void each(uint64_t n, const char* what, Visit visit) {
    std::vector<T> piece(std::min<uint64_t>(n, 1 << 16));
    for (uint64_t done = 0; done < n;) {
      const uint64_t k = std::min<uint64_t>(n - done, piece.size());
      read_bytes(piece.data(), k * sizeof(T), what);
      for (uint64_t i = 0; i < k; ++i) visit(piece[i], done + i);
      done += k;
    }
  }
  void expect_fourcc(const char* expected, const char* what) {
    char found[4];
    read_bytes(found, 4, what);
    if (std::memcmp(found, expected, 4) != 0)
      fail(std::string(what) + " is of FAISS type \"" + printable(found) + "\", expected \"" + expected + "\"");
  }
  int64_t left() const { return left_; }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(path_ + ": " + message + " (not a FAISS index written by `clip index` for this manifest)");
  }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > static_cast<uint64_t>(left_))
      fail(std::string("truncated in ") + what + ": " + std::to_string(n) + " bytes needed, " + std::to_string(left_) +
           " left");
  }
  static std::string printable(const char* s) {
    std::string out;
    for (int i = 0; i < 4; ++i) out += (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    return out;
  }
  std::FILE* file_;
  int64_t left_;
  const std::string& path_;
};

// faiss::Index's header: d, ntotal, two unused words, is_trained, metric (and its argument for
// metrics past L2).
void check_header(Cursor& c, const char* what, int dim, int64_t count) {
  const int32_t d = c.read<int32_t>(what);
  const int64_t ntotal = c.read<int64_t>(what);
  c.skip(2 * sizeof(int64_t) + 1, what);
  const int32_t metric = c.read<int32_t>(what);
  if (d != dim || ntotal != count)
    c.fail(std::string(what) + " claims " + std::to_string(ntotal) + " vectors of dimension " + std::to_string(d) +
           ", the manifest says " + std::to_string(count) + " of dimension " + std::to_string(dim));
  if (metric != 0) c.fail(std::string(what) + " has metric " + std::to_string(metric) + ", expected inner product (0)");
}

// IndexFlatIP: the header, then the vectors as one float array.
void check_flat(Cursor& c, const char* what, int dim, int64_t count) {
  c.expect_fourcc("IxFI", what);
  check_header(c, what, dim, count);
  const uint64_t floats = c.vector_count(sizeof(float), what);
  if (floats != static_cast<uint64_t>(count) * static_cast<uint64_t>(dim))
    c.fail(std::string(what) + " stores " + std::to_string(floats) + " floats, expected " + std::to_string(count) +
           " × " + std::to_string(dim));
  c.skip(floats * sizeof(float), what);
}

// IndexIVFFlat ("IwFl") or IndexIVFPQ ("IwPQ", 8-bit codes), after the fourcc: the IVF header and
// quantizer, the product quantizer of IVF-PQ, then the inverted lists.
void check_ivf(Cursor& c, IndexKind kind, int dim, int64_t count) {
  check_header(c, "the IVF index", dim, count);
  const uint64_t nlist = c.read<uint64_t>("the IVF index");
  c.skip(sizeof(uint64_t), "the IVF index");  // nprobe (set from the manifest after reading)
  if (nlist < 1 || nlist > static_cast<uint64_t>(std::max<int64_t>(count, 1)))
    c.fail("the IVF index claims " + std::to_string(nlist) + " lists, expected 1.." +
           std::to_string(std::max<int64_t>(count, 1)));
  check_flat(c, "the IVF quantizer", dim, static_cast<int64_t>(nlist));
  if (c.read<char>("the IVF direct map") != 0) c.fail("the IVF index has a direct map (clip index writes none)");
  if (c.vector_count(sizeof(int64_t), "the IVF direct map") != 0) c.fail("the IVF direct map is not empty");
  uint64_t code_size = static_cast<uint64_t>(dim) * sizeof(float);
  if (kind == IndexKind::kIvfPq) {
    c.skip(1, "the IVF-PQ index");  // by_residual
    code_size = c.read<uint64_t>("the IVF-PQ code size");
    const uint64_t pq_d = c.read<uint64_t>("the product quantizer");
    const uint64_t pq_m = c.read<uint64_t>("the product quantizer");
    const uint64_t pq_bits = c.read<uint64_t>("the product quantizer");
    if (pq_d != static_cast<uint64_t>(dim) || pq_m < 1 || dim % pq_m != 0 || pq_bits != 8 || code_size != pq_m)
      c.fail("the product quantizer claims dimension " + std::to_string(pq_d) + ", " + std::to_string(pq_m) +
             " sub-quantizers of " + std::to_string(pq_bits) + " bits and " + std::to_string(code_size) +
             "-byte codes, expected dimension " + std::to_string(dim) + ", sub-quantizers dividing it, 8 bits, " +
             "one byte per sub-quantizer");
    const uint64_t centroids = c.vector_count(sizeof(float), "the product quantizer's centroids");
    if (centroids != static_cast<uint64_t>(dim) * 256)
      c.fail("the product quantizer stores " + std::to_string(centroids) + " centroid floats, expected " +
             std::to_string(dim) + " × 256");
    c.skip(centroids * sizeof(float), "the product quantizer's centroids");
  }
  c.expect_fourcc("ilar", "the IVF inverted lists");
  const uint64_t lists = c.read<uint64_t>("the IVF inverted lists");
  const uint64_t list_code_size = c.read<uint64_t>("the IVF inverted lists");
  if (lists != nlist || list_code_size != code_size)
    c.fail("the IVF inverted lists claim " + std::to_string(lists) + " lists of " + std::to_string(list_code_size) +
           "-byte codes, expected " + std::to_string(nlist) + " of " + std::to_string(code_size));
  c.expect_fourcc("full", "the IVF list sizes");
  if (c.vector_count(sizeof(uint64_t), "the IVF list sizes") != nlist)
    c.fail("the IVF list sizes do not match the list count");
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  c.each<uint64_t>(nlist, "the IVF list sizes", [&](uint64_t n, uint64_t) {
    if (n > static_cast<uint64_t>(count) - total)
      c.fail("the IVF lists hold more than the manifest's " + std::to_string(count) + " vectors");
    total += n;
    sizes.push_back(n);
  });
  if (total != static_cast<uint64_t>(count))
    c.fail("the IVF lists hold " + std::to_string(total) + " vectors, the manifest says " + std::to_string(count));
  for (const uint64_t n : sizes) {
    c.skip(n * code_size, "an IVF list's codes");
    c.each<int64_t>(n, "an IVF list's ids", [&](int64_t id, uint64_t) {
      if (id < 0 || id >= count)
        c.fail("an IVF list holds the id " + std::to_string(id) + ", expected 0.." + std::to_string(count - 1));
    });
  }
}

void check_hnsw(Cursor& c, int dim, int64_t count) {
  check_header(c, "the HNSW index", dim, count);
  c.skip(c.vector_count(sizeof(double), "the HNSW level probabilities") * sizeof(double),
         "the HNSW level probabilities");
  // cum_nneighbor_per_level[l]: the links a node of level l has in all, so the neighbour slots of
  // node i are offsets[i] .. offsets[i + 1] = offsets[i] + cum[levels[i]].
  const uint64_t levels_n = c.vector_count(sizeof(int32_t), "the HNSW neighbour counts");
  if (levels_n < 2 || levels_n > 256)
    c.fail("the HNSW neighbour counts have " + std::to_string(levels_n) + " levels, expected 2..256");
  std::vector<int32_t> cum;
  c.each<int32_t>(levels_n, "the HNSW neighbour counts", [&](int32_t v, uint64_t i) {
    if (v < 0 || v > (1 << 20) || (i > 0 && v < cum.back())) c.fail("the HNSW neighbour counts are not increasing");
    cum.push_back(v);
  });
  if (c.vector_count(sizeof(int32_t), "the HNSW levels") != static_cast<uint64_t>(count))
    c.fail("the HNSW levels do not list the manifest's " + std::to_string(count) + " vectors");
  std::vector<int32_t> levels;
  levels.reserve(static_cast<size_t>(count));
  c.each<int32_t>(static_cast<uint64_t>(count), "the HNSW levels", [&](int32_t level, uint64_t) {
    if (level < 1 || static_cast<uint64_t>(level) >= levels_n)
      c.fail("an HNSW node has level " + std::to_string(level) + ", expected 1.." + std::to_string(levels_n - 1));
    levels.push_back(level);
  });
  if (c.vector_count(sizeof(uint64_t), "the HNSW offsets") != static_cast<uint64_t>(count) + 1)
    c.fail("the HNSW offsets do not number the manifest's count + 1");
  uint64_t expected_offset = 0;
  c.each<uint64_t>(static_cast<uint64_t>(count) + 1, "the HNSW offsets", [&](uint64_t offset, uint64_t i) {
    if (offset != expected_offset)
      c.fail("the HNSW offset of node " + std::to_string(i) + " does not follow its levels");
    if (i < static_cast<uint64_t>(count)) expected_offset += static_cast<uint64_t>(cum[static_cast<size_t>(levels[i])]);
  });
  if (c.vector_count(sizeof(int32_t), "the HNSW links") != expected_offset)
    c.fail("the HNSW links do not fill the slots the offsets describe");
  c.each<int32_t>(expected_offset, "the HNSW links", [&](int32_t id, uint64_t) {
    if (id < -1 || id >= count)
      c.fail("an HNSW link points at " + std::to_string(id) + ", expected -1.." + std::to_string(count - 1));
  });
  const int32_t entry = c.read<int32_t>("the HNSW entry point");
  const int32_t max_level = c.read<int32_t>("the HNSW entry point");
  if (count > 0 ? (entry < 0 || entry >= count || max_level != levels[static_cast<size_t>(entry)] - 1) : entry != -1)
    c.fail("the HNSW entry point " + std::to_string(entry) + " (level " + std::to_string(max_level) +
           ") is not a top node");
  c.skip(3 * sizeof(int32_t), "the HNSW search parameters");  // efConstruction, efSearch, upper_beam
  check_flat(c, "the HNSW storage", dim, count);
}

}  // namespace

void check_faiss_file(std::FILE* file, int64_t file_size, const std::string& path, IndexKind kind, int dim,
                      int64_t count) {
  Cursor c(file, file_size, path);
  switch (kind) {
    case IndexKind::kFlat: check_flat(c, "the flat index", dim, count); break;
    case IndexKind::kIvf:
      c.expect_fourcc("IwFl", "the index");
      check_ivf(c, kind, dim, count);
      break;
    case IndexKind::kIvfPq:
      c.expect_fourcc("IwPQ", "the index");
      check_ivf(c, kind, dim, count);
      break;
    case IndexKind::kHnsw:
      c.expect_fourcc("IHNf", "the index");
      check_hnsw(c, dim, count);
      break;
  }
  if (c.left() != 0) c.fail(std::to_string(c.left()) + " bytes follow the end of the index");
}

}  // namespace clip::index
