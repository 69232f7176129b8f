// The end of a run: final weights, curves, final evaluation, summary.
#include "train/run_finish.h"

#include <nlohmann/json.hpp>

#include "clip/data.h"
#include "io/safetensors.h"
#include "train/curves.h"
#include "train/final_report.h"
#include "util/file_io.h"

namespace clip::train {
namespace {

// bow-predict: the head beside the model (bow_head.safetensors: "weight" [V, embed_dim], "bias" [V]).
void save_bow_head(const BowHead& head, const std::string& path) {
  const torch::Tensor w = head.weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor b = head.bias.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  io::write_safetensors(path,
                        {{"weight", io::DType::kF32, w.sizes().vec(), w.data_ptr(), static_cast<size_t>(w.nbytes())},
                         {"bias", io::DType::kF32, b.sizes().vec(), b.data_ptr(), static_cast<size_t>(b.nbytes())}},
                        {{"format", "pt"}, {"objective", "bow-predict"}});
}

// bow-predict's final evaluation: zero-shot on the test split by the prompts' words (the linear
// probe and retrieval of the contrastive report are not run).
double bow_test_zero_shot(Run& run, const std::string& dir, const TrainCallbacks& callbacks) {
  if (callbacks.on_note) callbacks.on_note("final evaluation: bag-of-words zero-shot on the test split");
  eval::ExtractOptions eo;
  eo.threads = run.options.workers;
  eo.progress = false;
  const eval::FeatureSet features = eval::extract_image_features(run.model, *data::open_fashion_mnist("test", dir), eo);
  return bow_zero_shot(run.bow_head, run.model.config(), features, run.data.prompts.classes, run.data.prompts.templates)
      .top1;
}

}  // namespace

void finish_run(Run& run, TrainResult& result, const TrainCallbacks& callbacks) {
  using json = nlohmann::json;
  const TrainOptions& o = run.options;
  if (!result.interrupted) {
    result.model_path = o.out_dir + "/model.safetensors";
    run.model.save_safetensors(result.model_path);
    if (o.objective == Objective::kBowPredict) save_bow_head(run.bow_head, o.out_dir + "/bow_head.safetensors");
  }
  write_curves_svg(run.metrics_path, o.out_dir + "/curves.svg");
  if (o.final_eval && run.data.labelled && !result.interrupted && o.objective == Objective::kBowPredict) {
    result.test_zeroshot_top1 =
        bow_test_zero_shot(run, o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir, callbacks);
  } else if (o.final_eval && run.data.labelled && !result.interrupted) {
    FinalEvalOptions fo;
    fo.probe_train_limit = static_cast<size_t>(o.probe_train_limit);
    fo.threads = o.workers;
    fo.seed = o.seed;
    fo.on_note = callbacks.on_note;
    const std::string dir = o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir;
    const json r = final_evaluation(run.model, *data::open_fashion_mnist("train", dir),
                                    *data::open_fashion_mnist("test", dir), run.data.prompts, o.out_dir, fo);
    result.test_zeroshot_top1 = r["zero_shot"]["top1"].get<double>();
    result.linear_probe_accuracy = r["linear_probe"]["test_accuracy"].get<double>();
  }
  json summary{{"steps", result.steps},
               {"samples", result.samples},
               {"seconds", result.seconds},
               {"final_loss", result.final_loss},
               {"skipped_samples", result.skipped},
               {"interrupted", result.interrupted},
               {"model", result.model_path},
               {"config", json::parse(run.state.config_json)},
               {"objective", o.objective == Objective::kBowPredict ? "bow-predict" : "contrastive"}};
  if (result.val_top1 >= 0) summary["val_zeroshot_top1"] = result.val_top1;
  if (result.test_zeroshot_top1 >= 0) {
    summary["test_zeroshot_top1"] = result.test_zeroshot_top1;
    if (result.linear_probe_accuracy >= 0) summary["linear_probe_accuracy"] = result.linear_probe_accuracy;
  }
  util::write_file_atomic(o.out_dir + "/summary.json", summary.dump(2) + "\n");
}

}  // namespace clip::train
