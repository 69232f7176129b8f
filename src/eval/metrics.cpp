// Classification and retrieval metrics: pure functions of tensors, ties broken by index.
#include <algorithm>
#include <cmath>
#include <limits>

#include "clip/error.h"
#include "clip/eval.h"

namespace clip::eval {
namespace {

// Position of `target` in row `row` of a [R, C] matrix ordered by score descending, ties by
// lower index first: the count of entries ranked before it.
int64_t rank_in_row(const float* row, int64_t cols, int64_t target) {
  const float s = row[target];
  int64_t rank = 0;
  for (int64_t j = 0; j < cols; ++j)
    if (row[j] > s || (row[j] == s && j < target)) ++rank;
  return rank;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

RecallAtK summarize(const std::vector<int64_t>& ranks) {
  RecallAtK r;
  r.count = static_cast<int64_t>(ranks.size());
  if (ranks.empty()) return r;
  std::vector<double> one_based;
  double sum = 0;
  for (int64_t k : ranks) {
    r.r1 += k < 1;
    r.r5 += k < 5;
    r.r10 += k < 10;
    one_based.push_back(static_cast<double>(k + 1));
    sum += static_cast<double>(k + 1);
  }
  const double n = static_cast<double>(ranks.size());
  r.r1 /= n;
  r.r5 /= n;
  r.r10 /= n;
  r.mean_rank = sum / n;
  r.median_rank = median(std::move(one_based));
  return r;
}

torch::Tensor as_float_matrix(const torch::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 2) throw Error(std::string(what) + " must be a 2-D tensor");
  if (!t.is_floating_point()) throw Error(std::string(what) + " must hold floating-point values");
  return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

}  // namespace

ClassificationMetrics classification_metrics(const torch::Tensor& logits_in, const torch::Tensor& labels_in, int k) {
  const torch::Tensor logits = as_float_matrix(logits_in, "logits");
  if (!labels_in.defined() || labels_in.dim() != 1 || labels_in.size(0) != logits.size(0))
    throw Error("labels must be a 1-D tensor with one label per row of logits (" + std::to_string(logits.size(0)) +
                ")");
  if (k < 1) throw Error("top-k needs k >= 1, found " + std::to_string(k));
  const torch::Tensor labels = labels_in.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = logits.size(0), c = logits.size(1);
  if (c == 0) throw Error("logits have no classes");
  ClassificationMetrics m;
  m.count = n;
  m.k = static_cast<int>(std::min<int64_t>(k, c));
  m.confusion = torch::zeros({c, c}, torch::kInt64);
  m.class_counts.assign(static_cast<size_t>(c), 0);
  auto conf = m.confusion.accessor<int64_t, 2>();
  const float* x = logits.data_ptr<float>();
  const int64_t* y = labels.data_ptr<int64_t>();
  int64_t top1 = 0, topk = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * c;
    if (y[i] < 0 || y[i] >= c)
      throw Error("label " + std::to_string(y[i]) + " at row " + std::to_string(i) + " is outside [0, " +
                  std::to_string(c) + ")");
    int64_t pred = 0;
    for (int64_t j = 1; j < c; ++j)
      if (row[j] > row[pred]) pred = j;
    const int64_t rank = rank_in_row(row, c, y[i]);
    top1 += rank == 0;
    topk += rank < m.k;
    conf[y[i]][pred] += 1;
    m.class_counts[static_cast<size_t>(y[i])] += 1;
  }
  if (n > 0) {
    m.top1 = static_cast<double>(top1) / static_cast<double>(n);
    m.topk = static_cast<double>(topk) / static_cast<double>(n);
  }
  double sum = 0;
  int present = 0;
  for (int64_t j = 0; j < c; ++j) {
    const int64_t cnt = m.class_counts[static_cast<size_t>(j)];
    if (cnt == 0) {
      m.per_class_recall.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    const double r = static_cast<double>(conf[j][j]) / static_cast<double>(cnt);
    m.per_class_recall.push_back(r);
    sum += r;
    ++present;
  }
  m.mean_per_class_recall = present ? sum / present : 0;
  return m;
}

RetrievalMetrics retrieval_metrics(const torch::Tensor& similarity, const std::vector<int64_t>& text_to_image) {
  const torch::Tensor s = as_float_matrix(similarity, "similarity");
  const int64_t ni = s.size(0), nt = s.size(1);
  if (static_cast<int64_t>(text_to_image.size()) != nt)
    throw Error("text_to_image has " + std::to_string(text_to_image.size()) + " entries, expected one per text (" +
                std::to_string(nt) + ")");
  std::vector<std::vector<int64_t>> captions_of(static_cast<size_t>(ni));
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t i = text_to_image[static_cast<size_t>(t)];
    if (i < 0 || i >= ni)
      throw Error("text " + std::to_string(t) + " belongs to image " + std::to_string(i) + ", outside [0, " +
                  std::to_string(ni) + ")");
    captions_of[static_cast<size_t>(i)].push_back(t);
  }
  const float* x = s.data_ptr<float>();
  // image → text: the first of the image's captions in the row's order decides.
  std::vector<int64_t> i2t;
  for (int64_t i = 0; i < ni; ++i) {
    const auto& caps = captions_of[static_cast<size_t>(i)];
    if (caps.empty()) continue;
    const float* row = x + i * nt;
    int64_t best = caps[0];
    for (int64_t t : caps)
      if (row[t] > row[best]) best = t;  // caps are in increasing order: ties keep the lower index
    i2t.push_back(rank_in_row(row, nt, best));
  }
  // text → image: rank of the caption's image in its column.
  std::vector<int64_t> t2i;
  t2i.reserve(static_cast<size_t>(nt));
  const torch::Tensor st = s.t().contiguous();
  const float* xt = st.data_ptr<float>();
  for (int64_t t = 0; t < nt; ++t) t2i.push_back(rank_in_row(xt + t * ni, ni, text_to_image[static_cast<size_t>(t)]));
  return {summarize(i2t), summarize(t2i)};
}

}  // namespace clip::eval
