// Classification and retrieval metrics on hand-built inputs whose answers are worked out by hand
// in the comments.
#include <gtest/gtest.h>

#include <cmath>

#include "clip/error.h"
#include "clip/eval.h"

namespace clip::eval {
namespace {

torch::Tensor matrix(const std::vector<std::vector<float>>& rows) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) t[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = rows[i][j];
  return t;
}

TEST(ClassificationMetrics, TopKRecallConfusionWithTies) {
  // row 0: pred 0, label 0 (rank 0)           row 1: tie 1 = 1 → pred 0; label 1 has rank 1
  // row 2: pred 2, label 0 has rank 2          row 3: pred 1, label 1 (rank 0)
  const torch::Tensor logits = matrix({{3, 1, 2}, {1, 1, 0}, {0, 1, 2}, {0, 5, 1}});
  const torch::Tensor labels = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  const ClassificationMetrics m = classification_metrics(logits, labels, 2);
  EXPECT_EQ(m.count, 4);
  EXPECT_EQ(m.k, 2);
  EXPECT_DOUBLE_EQ(m.top1, 0.5);
  EXPECT_DOUBLE_EQ(m.topk, 0.75);
  EXPECT_DOUBLE_EQ(m.per_class_recall[0], 0.5);
  EXPECT_DOUBLE_EQ(m.per_class_recall[1], 0.5);
  EXPECT_TRUE(std::isnan(m.per_class_recall[2]));  // no example of class 2
  EXPECT_DOUBLE_EQ(m.mean_per_class_recall, 0.5);
  EXPECT_EQ(m.class_counts, (std::vector<int64_t>{2, 2, 0}));
  const std::vector<int64_t> conf(m.confusion.data_ptr<int64_t>(), m.confusion.data_ptr<int64_t>() + 9);
  EXPECT_EQ(conf, (std::vector<int64_t>{1, 0, 1,  //
                                        1, 1, 0,  //
                                        0, 0, 0}));
  // k larger than the class count is clipped: everything is in the top 3.
  const ClassificationMetrics m5 = classification_metrics(logits, labels, 5);
  EXPECT_EQ(m5.k, 3);
  EXPECT_DOUBLE_EQ(m5.topk, 1.0);
}

TEST(ClassificationMetrics, MeanPerClassRecallWeighsClassesEqually) {
  // Class 0: 3 of 3 right; class 1: 0 of 1. Accuracy 3/4, mean per-class recall (1 + 0) / 2.
  const torch::Tensor logits = matrix({{1, 0}, {1, 0}, {1, 0}, {1, 0}});
  const ClassificationMetrics m = classification_metrics(logits, torch::tensor({0, 0, 0, 1}, torch::kInt64), 1);
  EXPECT_DOUBLE_EQ(m.top1, 0.75);
  EXPECT_DOUBLE_EQ(m.mean_per_class_recall, 0.5);
}

TEST(ClassificationMetrics, BadInputs) {
  const torch::Tensor logits = matrix({{1, 0}});
  EXPECT_THROW(classification_metrics(logits, torch::tensor({2}, torch::kInt64)), Error);
  EXPECT_THROW(classification_metrics(logits, torch::tensor({-1}, torch::kInt64)), Error);
  EXPECT_THROW(classification_metrics(logits, torch::tensor({0, 1}, torch::kInt64)), Error);
  EXPECT_THROW(classification_metrics(logits, torch::tensor({0}, torch::kInt64), 0), Error);
  EXPECT_THROW(classification_metrics(torch::ones({2}), torch::tensor({0}, torch::kInt64)), Error);
}

TEST(RetrievalMetrics, SeveralCaptionsPerImageAndTies) {
  // Images 0, 1, 2; texts 0,1 → image 0, text 2 → image 1, texts 3,4 → image 2.
  const torch::Tensor s =
      matrix({{0.1f, 0.9f, 0.5f, 0.9f, 0.2f},    // best own caption t1; t3 ties but comes later: rank 0
              {0.8f, 0.7f, 0.3f, 0.1f, 0.6f},    // t2 has 3 above it: rank 3
              {0.5f, 0.5f, 0.5f, 0.5f, 0.5f}});  // all tied: t3 first of its own, 3 before it: rank 3
  const RetrievalMetrics m = retrieval_metrics(s, {0, 0, 1, 2, 2});
  EXPECT_EQ(m.image_to_text.count, 3);
  EXPECT_DOUBLE_EQ(m.image_to_text.r1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.image_to_text.r5, 1.0);
  EXPECT_DOUBLE_EQ(m.image_to_text.r10, 1.0);
  EXPECT_DOUBLE_EQ(m.image_to_text.mean_rank, 3.0);  // ranks 1, 4, 4
  EXPECT_DOUBLE_EQ(m.image_to_text.median_rank, 4.0);
  // Columns: t0 [.1 .8 .5] → image 0 rank 2; t1 [.9 .7 .5] → 0; t2 [.5 .3 .5] → image 1 rank 2;
  // t3 [.9 .1 .5] → image 2 rank 1; t4 [.2 .6 .5] → rank 1.
  EXPECT_EQ(m.text_to_image.count, 5);
  EXPECT_DOUBLE_EQ(m.text_to_image.r1, 0.2);
  EXPECT_DOUBLE_EQ(m.text_to_image.r5, 1.0);
  EXPECT_DOUBLE_EQ(m.text_to_image.mean_rank, 2.2);  // ranks 3 1 3 2 2
  EXPECT_DOUBLE_EQ(m.text_to_image.median_rank, 2.0);
}

TEST(RetrievalMetrics, RecallAtTenBoundaryAndUncaptionedImages) {
  // Image 0 owns only t11, which is last of 12 in its row (rank 11: outside R@10). Image 1 owns
  // t0..t10 and scores them all 0: t0 comes first (rank 0). Image 2 has no caption: not scored.
  std::vector<float> row0, row1(12, 0.f), row2(12, 0.f);
  for (int t = 0; t < 12; ++t) row0.push_back(static_cast<float>(12 - t));
  std::vector<int64_t> owner(11, 1);
  owner.push_back(0);
  const RetrievalMetrics m = retrieval_metrics(matrix({row0, row1, row2}), owner);
  EXPECT_EQ(m.image_to_text.count, 2);
  EXPECT_DOUBLE_EQ(m.image_to_text.r1, 0.5);
  EXPECT_DOUBLE_EQ(m.image_to_text.r5, 0.5);
  EXPECT_DOUBLE_EQ(m.image_to_text.r10, 0.5);
  EXPECT_DOUBLE_EQ(m.image_to_text.mean_rank, 6.5);  // ranks 12 and 1
  // t0..t10: image 0 scores higher than image 1 in each column (rank 1); t11: image 0 (1 > 0), rank 0.
  EXPECT_DOUBLE_EQ(m.text_to_image.r1, 1.0 / 12);
  EXPECT_DOUBLE_EQ(m.text_to_image.r5, 1.0);
  EXPECT_DOUBLE_EQ(m.text_to_image.mean_rank, 23.0 / 12);
  EXPECT_DOUBLE_EQ(m.text_to_image.median_rank, 2.0);
}

TEST(RetrievalMetrics, BadInputs) {
  const torch::Tensor s = torch::zeros({2, 3});
  EXPECT_THROW(retrieval_metrics(s, {0, 1}), Error);     // one entry short
  EXPECT_THROW(retrieval_metrics(s, {0, 1, 2}), Error);  // image 2 does not exist
  EXPECT_THROW(retrieval_metrics(s, {0, -1, 1}), Error);
  EXPECT_THROW(retrieval_metrics(torch::zeros({3}), {0, 0, 0}), Error);
}

}  // namespace
}  // namespace clip::eval
