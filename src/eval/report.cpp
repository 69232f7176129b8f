#include "eval/report.h"

#include <torch/version.h>

#include <cmath>

namespace clip::eval {

nlohmann::json versions_json() { return {{"clip_cpp", CLIP_VERSION_STRING}, {"libtorch", TORCH_VERSION}}; }

nlohmann::json report_json(const std::string& task, const std::string& dataset, const std::string& model,
                           const nlohmann::json& metrics, const nlohmann::json& settings,
                           const std::vector<SkippedExample>& skipped) {
  nlohmann::json s = nlohmann::json::array();
  for (const auto& k : skipped) s.push_back({{"index", k.index}, {"source", k.source}, {"reason", k.reason}});
  return {{"task", task},         {"dataset", dataset},          {"model", model}, {"metrics", metrics},
          {"settings", settings}, {"versions", versions_json()}, {"skipped", s}};
}

nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& class_names) {
  nlohmann::json per_class = nlohmann::json::array();
  const torch::Tensor conf = m.confusion.contiguous();
  const int64_t c = conf.size(0);
  nlohmann::json confusion = nlohmann::json::array();
  for (int64_t i = 0; i < c; ++i) {
    const double r = m.per_class_recall[static_cast<size_t>(i)];
    per_class.push_back({{"class", i < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(i)]
                                                                                : std::to_string(i)},
                         {"count", m.class_counts[static_cast<size_t>(i)]},
                         {"recall", std::isnan(r) ? nlohmann::json(nullptr) : nlohmann::json(r)}});
    std::vector<int64_t> row(conf[i].data_ptr<int64_t>(), conf[i].data_ptr<int64_t>() + c);
    confusion.push_back(row);
  }
  return {{"count", m.count},
          {"top1", m.top1},
          {"top" + std::to_string(m.k), m.topk},
          {"k", m.k},
          {"mean_per_class_recall", m.mean_per_class_recall},
          {"per_class", per_class},
          {"confusion", confusion}};
}

namespace {
nlohmann::json recall_json(const RecallAtK& r) {
  return {{"r1", r.r1},      {"r5", r.r5}, {"r10", r.r10}, {"mean_rank", r.mean_rank}, {"median_rank", r.median_rank},
          {"count", r.count}};
}
}  // namespace

nlohmann::json to_json(const RetrievalMetrics& m) {
  return {{"image_to_text", recall_json(m.image_to_text)}, {"text_to_image", recall_json(m.text_to_image)}};
}

nlohmann::json to_json(const LinearProbeResult& r) {
  nlohmann::json sweep = nlohmann::json::array();
  for (const auto& [l, a] : r.sweep) sweep.push_back({{"lambda", l}, {"validation_accuracy", a}});
  return {{"test_accuracy", r.test_accuracy},
          {"lambda", r.lambda},
          {"validation_accuracy", r.validation_accuracy},
          {"sweep", sweep},
          {"train_count", r.train_count},
          {"validation_count", r.validation_count},
          {"test_count", r.test_count},
          {"classes", r.classes},
          {"fit_seconds", r.seconds}};
}

}  // namespace clip::eval
