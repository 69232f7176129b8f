#include "index/faiss_store.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "clip/error.h"
#include "index/blas_threads.h"
#include "index/faiss_check.h"
#include "util/file_io.h"

namespace clip::index {
namespace {

// The number of inverted lists: the given one, or about 4·sqrt(N) (at most N). Refuses more lists
// than rows to train on.
size_t ivf_list_count(const IndexParams& params, int64_t n) {
  int64_t nlist = params.nlist;
  if (nlist == 0) nlist = std::max<int64_t>(1, std::min<int64_t>(n, static_cast<int64_t>(4 * std::sqrt(double(n)))));
  if (n == 0) throw Error("an IVF index needs at least one image to train on (use --index-type flat)");
  if (nlist > n)
    throw Error("IVF nlist = " + std::to_string(nlist) + " is more than the " + std::to_string(n) +
                " images to train on (lower --nlist, or use --index-type flat)");
  return static_cast<size_t>(nlist);
}

// The rows the quantizers are trained on: all of them, or train_sample rows evenly spaced through
// the collection (deterministic; a source listed folder by folder is sampled in every folder).
int64_t training_row_count(const IndexParams& params, int64_t n) {
  return params.train_sample == 0 ? n : std::min(n, params.train_sample);
}
// The training rows: all of them, or train_sample rows evenly spaced through the collection. The
// rows before each sampled one are done with as the sampling goes (read from a memory map, every
// sampled row would otherwise keep the pages around it mapped: nearly the whole file).
std::vector<float> training_rows(const IndexParams& params, int dim, const RowSource& rows) {
  const int64_t n = rows.count, s = training_row_count(params, n);
  std::vector<float> sample(static_cast<size_t>(s) * static_cast<size_t>(dim));
  if (s == n) {
    if (n > 0) rows.read(0, n, sample.data());
    return sample;
  }
  for (int64_t i = 0; i < s; ++i) {
    const int64_t row =
        static_cast<int64_t>((static_cast<unsigned __int128>(i) * static_cast<uint64_t>(n)) / static_cast<uint64_t>(s));
    rows.read(row, 1, sample.data() + i * dim);
    if (rows.done && (i + 1) % 64 == 0) rows.done(0, row + 1);
  }
  return sample;
}

}  // namespace

RowSource rows_in_memory(int64_t n, int dim, const float* rows) {
  RowSource source;
  source.count = n;
  source.read = [rows, dim](int64_t begin, int64_t count, float* out) {
    std::copy(rows + begin * dim, rows + (begin + count) * dim, out);
  };
  return source;
}

std::unique_ptr<faiss::Index> build_faiss(const IndexParams& params, int dim, const RowSource& rows) {
  params.validate_for(dim);
  const int64_t n = rows.count;
  const auto& done = rows.done;
  const OneBlasThread one_blas_thread;  // FAISS's OpenMP threads do the parallel work
  try {
    std::unique_ptr<faiss::Index> index;
    switch (params.kind) {
      case IndexKind::kFlat: index = std::make_unique<faiss::IndexFlatIP>(dim); break;
      case IndexKind::kIvf:
      case IndexKind::kIvfPq: {
        const int64_t sample_count = training_row_count(params, n);
        const size_t nlist = ivf_list_count(params, sample_count);
        std::unique_ptr<faiss::IndexIVF> ivf;
        if (params.kind == IndexKind::kIvf) {
          ivf = std::make_unique<faiss::IndexIVFFlat>(new faiss::IndexFlatIP(dim), dim, nlist,
                                                      faiss::METRIC_INNER_PRODUCT);
        } else {
          const int m = params.pq_m == 0 ? std::max(1, dim / 8) : params.pq_m;
          // 8 bits per sub-quantizer: 256 centroids each, so at least 256 rows to train them on.
          if (sample_count < 256)
            throw Error("an ivfpq index needs at least 256 images to train its product quantizer on, got " +
                        std::to_string(sample_count) + " (use --index-type flat or ivf)");
          ivf = std::make_unique<faiss::IndexIVFPQ>(new faiss::IndexFlatIP(dim), dim, nlist, static_cast<size_t>(m), 8,
                                                    faiss::METRIC_INNER_PRODUCT);
        }
        ivf->own_fields = true;  // the index deletes its quantizer
        ivf->cp.verbose = false;
        {
          const std::vector<float> sample = training_rows(params, dim, rows);
          ivf->train(sample_count, sample.data());
        }
        if (done) done(0, n);  // the sample was spread over all rows; adding reads them in order
        ivf->nprobe = static_cast<size_t>(params.nprobe);
        index = std::move(ivf);
        break;
      }
      case IndexKind::kHnsw: {
        auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(dim, params.hnsw_m, faiss::METRIC_INNER_PRODUCT);
        hnsw->hnsw.efConstruction = params.ef_construction;
        hnsw->hnsw.efSearch = params.ef_search;
        index = std::move(hnsw);
        break;
      }
    }
    // IVF kinds in batches (each row is assigned and encoded alone: the same lists and codes as
    // one call). Flat and HNSW keep every row in memory anyway, and HNSW's graph depends on the
    // order of insertion within a call: one call.
    const bool ivf = params.kind == IndexKind::kIvf || params.kind == IndexKind::kIvfPq;
    const int64_t batch = ivf ? kAddBatchRows : std::max<int64_t>(n, 1);
    std::vector<float> buffer;
    for (int64_t begin = 0; begin < n; begin += batch) {
      const int64_t count = std::min(batch, n - begin);
      buffer.resize(static_cast<size_t>(count) * static_cast<size_t>(dim));
      rows.read(begin, count, buffer.data());
      index->add(count, buffer.data());
      if (done) done(begin, begin + count);
    }
    return index;
  } catch (const faiss::FaissException& e) {
    throw Error(std::string("FAISS could not build the ") + index_kind_name(params.kind) + " index: " + e.what());
  }
}

void write_faiss(const faiss::Index& index, const std::string& path) {
  const std::string tmp = util::temp_path_for(path);
  try {
    faiss::write_index(&index, tmp.c_str());
  } catch (const faiss::FaissException& e) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the FAISS index: " + e.what(), ErrorKind::kIo);
  }
  util::publish_file(tmp, path);  // fsync, rename, fsync of the folder
}

std::unique_ptr<faiss::Index> read_faiss(const std::string& path, const IndexParams& params, int dim, int64_t count,
                                         bool mmap) {
  // One open file for the check and the read: what FAISS reads is what was checked.
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file)
    throw Error(path + ": cannot open the FAISS index: " + std::strerror(errno),
                errno == ENOENT ? ErrorKind::kNotFound : ErrorKind::kIo);
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(file, &std::fclose);
  struct stat st;
  if (::fstat(::fileno(file), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(path + ": not a regular file", ErrorKind::kIo);
  check_faiss_file(file, st.st_size, path, params.kind, dim, count);
  if (std::fseek(file, 0, SEEK_SET) != 0) throw Error(path + ": cannot seek", ErrorKind::kIo);
  std::unique_ptr<faiss::Index> index;
  try {
    // IO_FLAG_MMAP maps the inverted lists of an IVF index (read-only, pages loaded on demand)
    // instead of reading them; other index types ignore it.
    const bool ivf = params.kind == IndexKind::kIvf || params.kind == IndexKind::kIvfPq;
    index.reset(faiss::read_index(file, mmap && ivf ? faiss::IO_FLAG_MMAP : 0));
  } catch (const faiss::FaissException& e) {
    throw Error(path + ": cannot read the FAISS index: " + e.what());
  }
  if (index->d != dim || index->ntotal != count)
    throw Error(path + ": the FAISS index holds " + std::to_string(index->ntotal) + " vectors of dimension " +
                std::to_string(index->d) + ", the manifest says " + std::to_string(count) + " of dimension " +
                std::to_string(dim));
  if (index->metric_type != faiss::METRIC_INNER_PRODUCT) throw Error(path + ": not an inner-product FAISS index");
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index.get())) {
    ivf->nprobe = static_cast<size_t>(params.nprobe);
    // Mapped lists: FAISS would start up to 32 threads per search to read the probed lists ahead;
    // the kernel pages them in on first touch anyway, and the thread starts cost more than the
    // search (docs/search.md, "Benchmarks").
    if (auto* mapped = dynamic_cast<faiss::OnDiskInvertedLists*>(ivf->invlists)) mapped->prefetch_nthread = 0;
  }
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get())) hnsw->hnsw.efSearch = params.ef_search;
  return index;
}

}  // namespace clip::index
