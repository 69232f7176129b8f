// Compressed indexes (IVF-PQ trained on a sample), re-ranking by exact cosine from the stored
// embeddings, and memory-mapped IVF lists, on synthetic clustered vectors (docs/search.md).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/index.h"
#include "index/manifest.h"
#include "synthetic_index.h"
#include "temp_dir.h"
#include "util/file_io.h"
#include "util/npy.h"

namespace clip {
namespace {

using test::TempDir;

constexpr int kDim = 64;

// Whether this process maps `path` (/proc/self/maps lists every mapped file).
bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(path) != std::string::npos) return true;
  return false;
}

double mean_recall(const index::ImageIndex& idx, const std::vector<float>& rows, const std::vector<float>& queries,
                   int k) {
  const int nq = static_cast<int>(queries.size() / kDim);
  double sum = 0;
  for (int q = 0; q < nq; ++q)
    sum += test::recall_at(idx.search(&queries[q * kDim], k), test::exact_top_k(rows, kDim, &queries[q * kDim], k));
  return sum / nq;
}

TEST(IndexCompressed, IvfPqRecallWithRerankAndMmapAnswersAsLoaded) {
  constexpr int64_t kRows = 200000;
  // 100 more points of the same clusters are the queries.
  const std::vector<float> all = test::clustered_vectors(kRows + 100, kDim, 1000, 1);
  const std::vector<float> rows(all.begin(), all.begin() + kRows * kDim);
  const std::vector<float> queries(all.begin() + kRows * kDim, all.end());
  TempDir dir;
  index::IndexParams params;
  params.kind = index::IndexKind::kIvfPq;
  params.nlist = 512;
  params.nprobe = 16;
  params.pq_m = 16;  // 16 bytes per vector instead of 256
  params.train_sample = 40000;
  params.rerank = 100;
  test::publish_synthetic_index(dir.path(), params, kDim, rows);
  const index::Manifest m = index::read_manifest(dir.path());
  EXPECT_EQ(m.params.kind, index::IndexKind::kIvfPq);
  EXPECT_EQ(m.params.pq_m, 16);
  EXPECT_EQ(m.params.train_sample, 40000);
  EXPECT_EQ(m.params.rerank, 100);
  // The codes take 16 bytes a row (plus an 8-byte id), not 256.
  EXPECT_LT(std::filesystem::file_size(dir.file(m.faiss_file)), uint64_t{kRows} * 32);

  const index::ImageIndex plain = index::ImageIndex::open(dir.path(), {false, 0});
  const index::ImageIndex reranked = index::ImageIndex::open(dir.path());  // the manifest's rerank = 100
  const double recall_plain = mean_recall(plain, rows, queries, 10);
  const double recall_reranked = mean_recall(reranked, rows, queries, 10);
  std::printf("IVF-PQ (nlist 512, nprobe 16, m 16) on 200k x %d: recall@10 %.3f, with rerank 100: %.3f\n", kDim,
              recall_plain, recall_reranked);
  RecordProperty("recall_at_10", std::to_string(recall_plain));
  RecordProperty("recall_at_10_rerank_100", std::to_string(recall_reranked));
  EXPECT_GE(recall_reranked, 0.9);

  // Re-ranked scores are the exact cosines, best first.
  const std::vector<index::Hit> hits = reranked.search(&queries[0], 10);
  ASSERT_EQ(hits.size(), 10u);
  for (size_t i = 0; i < hits.size(); ++i) {
    double dot = 0;
    for (int j = 0; j < kDim; ++j) dot += double(queries[j]) * rows[hits[i].id * kDim + j];
    EXPECT_NEAR(hits[i].score, dot, 1e-5);
    if (i > 0) {
      EXPECT_GE(hits[i - 1].score, hits[i].score);
    }
  }

  // Mapped lists answer exactly as loaded ones, with and without re-ranking.
  EXPECT_FALSE(is_mapped(dir.file(m.faiss_file)));
  const index::ImageIndex mapped = index::ImageIndex::open(dir.path(), {true, 0});
  const index::ImageIndex mapped_reranked = index::ImageIndex::open(dir.path(), {true, -1});
  EXPECT_TRUE(is_mapped(dir.file(m.faiss_file)));
  for (int q = 0; q < 100; ++q) {
    const float* query = &queries[q * kDim];
    for (const auto& [a, b] : {std::make_pair(&plain, &mapped), std::make_pair(&reranked, &mapped_reranked)}) {
      const std::vector<index::Hit> loaded_hits = a->search(query, 10), mapped_hits = b->search(query, 10);
      ASSERT_EQ(loaded_hits.size(), mapped_hits.size());
      for (size_t i = 0; i < loaded_hits.size(); ++i) {
        EXPECT_EQ(loaded_hits[i].id, mapped_hits[i].id) << "query " << q << " rank " << i;
        EXPECT_EQ(loaded_hits[i].score, mapped_hits[i].score) << "query " << q << " rank " << i;
      }
    }
  }
}

// A small IVF-PQ index for the error cases (the product quantizer needs 256 rows).
struct SmallIvfPq {
  TempDir dir;
  std::vector<float> rows = test::clustered_vectors(1000, 16, 20, 7);
  index::Manifest manifest;
  SmallIvfPq() {
    index::IndexParams p;
    p.kind = index::IndexKind::kIvfPq;
    p.nlist = 8;
    p.pq_m = 4;
    test::publish_synthetic_index(dir.path(), p, 16, rows);
    manifest = index::read_manifest(dir.path());
  }
  std::string faiss_path() const { return dir.file(manifest.faiss_file); }
};

TEST(IndexCompressed, RefusesParametersThatDoNotFit) {
  TempDir dir;
  index::IndexParams p;
  p.kind = index::IndexKind::kIvfPq;
  p.nlist = 4;
  p.pq_m = 5;  // does not divide 16
  EXPECT_THROW(test::publish_synthetic_index(dir.file("a"), p, 16, test::clustered_vectors(1000, 16, 5, 1)), Error);
  p.pq_m = 4;
  try {
    test::publish_synthetic_index(dir.file("b"), p, 16, test::clustered_vectors(100, 16, 5, 1));
    FAIL() << "an ivfpq index of 100 rows was built";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least 256"), std::string::npos) << e.what();
  }
}

TEST(IndexCompressed, HostileIvfPqFileIsRefusedBeforeFaissReadsIt) {
  SmallIvfPq small;
  std::string bytes = util::read_file(small.faiss_path());
  // The product quantizer's bit count sits after the IVF header, quantizer and direct map; find it
  // as the three size_t words (d = 16, M = 4, nbits = 8).
  const uint64_t words[3] = {16, 4, 8};
  const std::string needle(reinterpret_cast<const char*>(words), sizeof words);
  const size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  const std::string original = bytes;
  bytes[at + 16] = 12;  // 12-bit codes: 4096 centroids each
  util::write_file_atomic(small.faiss_path(), bytes);
  try {
    index::ImageIndex::open(small.dir.path());
    FAIL() << "a product quantizer of 12 bits was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("product quantizer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(small.faiss_path()), std::string::npos) << e.what();
  }
  // Truncated in the codes.
  util::write_file_atomic(small.faiss_path(), original.substr(0, original.size() - 5000));
  EXPECT_THROW(index::ImageIndex::open(small.dir.path()), Error);
  util::write_file_atomic(small.faiss_path(), original);
  EXPECT_NO_THROW(index::ImageIndex::open(small.dir.path(), {true, 0}));
}

TEST(IndexCompressed, RerankRefusesEmbeddingsOfAnotherShape) {
  SmallIvfPq small;
  const std::string path = small.dir.file(small.manifest.chunks.at(0).embeddings);
  std::vector<float> wrong(999 * 16, 0.25f);
  util::write_npy(path, "<f4", {999, 16}, wrong.data(), wrong.size() * sizeof(float));
  EXPECT_NO_THROW(index::ImageIndex::open(small.dir.path(), {false, 0}));  // not read without re-ranking
  try {
    index::ImageIndex::open(small.dir.path(), {false, 10});
    FAIL() << "999 embeddings for 1000 rows were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[1000, 16]"), std::string::npos) << e.what();
  }
  // A header claiming more rows than the file holds.
  std::string bytes = util::to_npy("<f4", {1000, 16}, wrong.data(), wrong.size() * sizeof(float));
  util::write_file_atomic(path, bytes);
  EXPECT_THROW(index::ImageIndex::open(small.dir.path(), {false, 10}), Error);
}

}  // namespace
}  // namespace clip
