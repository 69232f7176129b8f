// The one result schema of every evaluation (docs/eval.md):
// {"task", "dataset", "model", "metrics", "settings", "versions": {"clip_cpp", "libtorch"}, "skipped"}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clip/eval.h"

namespace clip::eval {

nlohmann::json report_json(const std::string& task, const std::string& dataset, const std::string& model,
                           const nlohmann::json& metrics, const nlohmann::json& settings,
                           const std::vector<SkippedExample>& skipped);

// Metrics as JSON objects (NaN per-class recall, for a class without examples, becomes null).
nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& class_names);
nlohmann::json to_json(const RetrievalMetrics& m);
nlohmann::json to_json(const LinearProbeResult& r);

// The library versions, e.g. {"clip_cpp": "0.1.0", "libtorch": "1.13.0"}.
nlohmann::json versions_json();

}  // namespace clip::eval
