// eval::retrieval (the one used by `clip eval retrieval` and the training report) against a direct
// computation: each caption's embedding normalized, cosine similarities, ranks.
#include <gtest/gtest.h>

#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/eval.h"
#include "tiny_model.h"

namespace clip::eval {
namespace {

TEST(Retrieval, EqualsTheMetricsOfNormalizedCaptionSimilarities) {
  const Model& model = test::tiny_model();
  const std::vector<std::string> captions = {"a photo of a cat", "an astronaut",       "a red rocket on a launch pad",
                                             "a cup of coffee",  "a horse in a field", "a cat"};
  const std::vector<int64_t> text_to_image = {0, 1, 2, 3, 4, 0};
  torch::manual_seed(7);
  const torch::Tensor images = normalize_rows(torch::randn({5, model.config().embed_dim}));

  const torch::Tensor texts = Embedder(model).embed_texts(captions);
  const torch::Tensor unit = texts / texts.norm(2, -1, true);
  const RetrievalMetrics expected = retrieval_metrics(torch::matmul(images, unit.t()), text_to_image);
  const RetrievalMetrics got = retrieval(model, images, captions, text_to_image);
  for (const auto& [e, g] :
       {std::pair{expected.image_to_text, got.image_to_text}, {expected.text_to_image, got.text_to_image}}) {
    EXPECT_EQ(g.count, e.count);
    EXPECT_DOUBLE_EQ(g.r1, e.r1);
    EXPECT_DOUBLE_EQ(g.r5, e.r5);
    EXPECT_DOUBLE_EQ(g.mean_rank, e.mean_rank);
    EXPECT_DOUBLE_EQ(g.median_rank, e.median_rank);
  }
}

TEST(Retrieval, OneImageIndexPerCaption) {
  const torch::Tensor images = normalize_rows(torch::randn({2, test::tiny_model().config().embed_dim}));
  EXPECT_THROW(retrieval(test::tiny_model(), images, {"a cat", "a dog"}, {0}), Error);
}

}  // namespace
}  // namespace clip::eval
