// The end of a run on labelled data (the Fashion-MNIST demo): zero-shot classification of the
// test set with the held-out templates, a linear probe on the frozen image features, image↔text
// retrieval, written as results.json and a small HTML report (training curves, metrics, confusion
// matrix, example test images with their top predictions).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "clip/data.h"
#include "clip/model.h"
#include "data/prompts.h"

namespace clip::train {

struct FinalEvalOptions {
  size_t probe_train_limit = 0;    // > 0: the linear probe trains on this many training examples
  size_t retrieval_images = 1000;  // test images (each with one held-out caption) for retrieval
  int threads = 0;
  uint64_t seed = 0;
  std::function<void(const std::string& line)> on_note;  // the stages, as they start
};

// Runs the three evaluations, writes <out_dir>/results.json and <out_dir>/report.html (the
// curves come from <out_dir>/metrics.jsonl), and returns the results.
nlohmann::json final_evaluation(const Model& model, const data::Dataset& train_set, const data::Dataset& test_set,
                                const data::ClassPrompts& prompts, const std::string& out_dir,
                                const FinalEvalOptions& options);

}  // namespace clip::train
