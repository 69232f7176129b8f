// What the index tests share: the brute-force reference they compare search results with (every
// file embedded by the Embedder, not the index code, ranked by cosine similarity to the query),
// and the build options they use.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "clip/embedder.h"
#include "clip/index.h"
#include "tiny_model.h"

namespace clip::test {

// Quiet, and several batches and work chunks even for a handful of files.
inline index::BuildOptions quiet_options() {
  index::BuildOptions o;
  o.batch_size = 3;
  o.chunk_size = 2;
  o.threads = 2;
  return o;
}

// Search results must be the brute-force ranking: same scores, and the same rows wherever the
// scores are not tied (within the float noise of different batch compositions). rows[i] is the
// path the index stores for files[i] (the file itself, or SHARD#MEMBER for a tar member).
inline void expect_matches_brute_force(const index::ImageIndex& index, const std::vector<std::string>& rows,
                                       const std::vector<std::string>& files, const torch::Tensor& query, int k) {
  const Embedder embedder(tiny_model(), Tokenizer(), 2);
  const torch::Tensor emb = normalize_rows(embedder.embed_image_files(files));
  const torch::Tensor scores = torch::matmul(emb, normalize_rows(query.reshape({1, -1})).t()).reshape({-1});
  std::vector<std::pair<float, std::string>> expected;
  for (size_t i = 0; i < rows.size(); ++i) expected.push_back({scores[static_cast<int64_t>(i)].item<float>(), rows[i]});
  std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const auto hits = index.search(query, k);
  ASSERT_EQ(hits.size(), std::min<size_t>(k, expected.size()));
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_NEAR(hits[i].score, expected[i].first, 1e-4) << "rank " << i;
    const bool tied = (i > 0 && std::abs(expected[i - 1].first - expected[i].first) < 1e-4) ||
                      (i + 1 < expected.size() && std::abs(expected[i + 1].first - expected[i].first) < 1e-4);
    if (!tied) {
      EXPECT_EQ(hits[i].path, expected[i].second) << "rank " << i;
    }
  }
}

inline torch::Tensor text_query(const std::string& text) {
  const Embedder embedder(tiny_model(), Tokenizer(), 2);
  return embedder.embed_texts({text});
}

}  // namespace clip::test
