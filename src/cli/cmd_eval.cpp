// `clip eval zeroshot | linear-probe | retrieval`: flags in, library calls (src/eval), a table
// on stdout and one JSON schema for every task (--json).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/output.h"
#include "cli/progress.h"
#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/eval.h"
#include "eval/report.h"
#include "util/file_io.h"

namespace clip::cli {
namespace {

struct EvalOptions {
  ModelOptions model;
  std::string dataset, split = "test", data_dir, json_out, cache_dir;
  std::string csv_img_key = "filepath", csv_caption_key = "title", csv_label_key, csv_separator;
  int batch_size = 64;
  size_t limit = 0;
  bool no_progress = false;
  // zeroshot
  std::string classes_file, templates_file;
  int top_k = 5;
  // linear-probe
  std::string train_dataset, train_split = "train", lambdas;
  double validation_fraction = 0.2;
  uint64_t seed = 0;
  int max_iterations = 1000;
};

eval::DatasetOptions dataset_options(const EvalOptions& o, bool labels) {
  eval::DatasetOptions d;
  d.data_dir = o.data_dir;
  d.table.image_column = o.csv_img_key;
  d.table.caption_column = o.csv_caption_key;
  d.table.label_column = labels ? o.csv_label_key : "";
  if (!o.csv_separator.empty()) {
    if (o.csv_separator == "\\t" || o.csv_separator == "tab") d.table.separator = '\t';
    else if (o.csv_separator.size() == 1) d.table.separator = o.csv_separator[0];
    else
      throw CLI::ValidationError("--csv-separator",
                                 "expected one character or \"tab\", found \"" + o.csv_separator + "\"");
  }
  return d;
}

// `weights`: the file --model resolved to (a name is no file to identify).
eval::ExtractOptions extract_options(const EvalOptions& o, const std::string& weights) {
  eval::ExtractOptions e;
  e.batch_size = o.batch_size;
  e.threads = o.model.threads;
  if (!o.no_progress) e.on_progress = progress_bar_on_stderr();
  e.limit = o.limit;
  if (!o.cache_dir.empty()) {
    e.cache_dir = o.cache_dir;
    e.model_identity = eval::model_file_identity(weights) + "|config=" + o.model.config;
  }
  return e;
}

nlohmann::json common_settings(const EvalOptions& o, const Model& model) {
  return {{"split", o.split},
          {"batch_size", o.batch_size},
          {"image_resolution", model.config().image_resolution},
          {"precision", o.model.precision},
          {"device", o.model.device},
          {"limit", o.limit}};
}

void finish(const EvalOptions& o, const nlohmann::json& report) {
  if (o.limit > 0) std::printf("(only the first %zu examples of each data set: --limit)\n", o.limit);
  if (!report["skipped"].empty())
    std::printf("skipped %zu bad examples (listed in the JSON report)\n", report["skipped"].size());
  if (!o.json_out.empty())
    util::write_file_atomic(o.json_out, report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// The class names and templates: flags first, then the shipped file for a named data set, then
// the data set's own class names with CLIP's plain prompt.
eval::ClassPrompts class_prompts(const EvalOptions& o, const data::Dataset& ds) {
  eval::ClassPrompts p;
  if (eval::has_shipped_class_prompts(o.dataset)) p = eval::shipped_class_prompts(o.dataset);
  if (!o.classes_file.empty()) p.classes = eval::read_name_list(o.classes_file, "classes");
  if (!o.templates_file.empty()) p.templates = eval::read_name_list(o.templates_file, "templates");
  if (p.classes.empty()) p.classes = ds.class_names();
  if (p.templates.empty()) p.templates = {"a photo of a {}."};
  if (p.classes.empty())
    throw Error(o.dataset +
                ": the data set names no classes; give them with --classes FILE (one a line, in label order)");
  return p;
}

void run_zeroshot(const EvalOptions& o) {
  hub::ResolvedModel files;
  const Model model = load_model(o.model, &files);
  const auto ds = eval::open_dataset(o.dataset, o.split, dataset_options(o, true));
  const eval::ClassPrompts prompts = class_prompts(o, *ds);
  const eval::FeatureSet f = eval::extract_image_features(model, *ds, extract_options(o, files.weights));
  const eval::ZeroShotResult r =
      eval::zero_shot(model, f, prompts.classes, prompts.templates, o.top_k, o.model.threads);
  const auto& m = r.metrics;
  std::printf("zero-shot  %s  (%lld examples, %zu classes, %zu templates)\n", ds->description().c_str(),
              static_cast<long long>(m.count), prompts.classes.size(), prompts.templates.size());
  std::printf(
      "  top-1                  %7.2f%%\n  top-%-2d                 %7.2f%%\n  mean per-class recall  %7.2f%%\n",
      100 * m.top1, m.k, 100 * m.topk, 100 * m.mean_per_class_recall);
  if (prompts.classes.size() <= 20)
    for (size_t c = 0; c < prompts.classes.size(); ++c)
      std::printf("    %-24s %7.2f%%  (%lld)\n", prompts.classes[c].c_str(), 100 * m.per_class_recall[c],
                  static_cast<long long>(m.class_counts[c]));
  nlohmann::json settings = common_settings(o, model);
  settings["classes"] = prompts.classes;
  settings["templates"] = prompts.templates;
  settings["prompts_from"] = o.classes_file.empty() && o.templates_file.empty() ? prompts.source : "flags";
  finish(o, eval::report_json("zeroshot", ds->description(), o.model.model, eval::to_json(m, prompts.classes), settings,
                              f.skipped));
}

std::vector<double> parse_lambdas(const std::string& s) {
  std::vector<double> out;
  for (const std::string& item : split_commas(s)) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(v > 0))
      throw CLI::ValidationError("--lambdas", "expected positive numbers separated by commas, found \"" + item + "\"");
    out.push_back(v);
  }
  return out;
}

void run_linear_probe(const EvalOptions& o) {
  eval::LinearProbeOptions lp;
  lp.lambdas = parse_lambdas(o.lambdas);
  lp.validation_fraction = o.validation_fraction;
  lp.seed = o.seed;
  lp.max_iterations = o.max_iterations;
  if (!o.no_progress)
    lp.on_lambda = [](double lambda, double accuracy) {
      std::fprintf(stderr, "linear probe: lambda %.3g  validation accuracy %.4f\n", lambda, accuracy);
    };
  hub::ResolvedModel files;
  const Model model = load_model(o.model, &files);
  const std::string train_spec = o.train_dataset.empty() ? o.dataset : o.train_dataset;
  const auto train_ds = eval::open_dataset(train_spec, o.train_split, dataset_options(o, true));
  const auto test_ds = eval::open_dataset(o.dataset, o.split, dataset_options(o, true));
  const eval::FeatureSet train = eval::extract_image_features(model, *train_ds, extract_options(o, files.weights));
  const eval::FeatureSet test = eval::extract_image_features(model, *test_ds, extract_options(o, files.weights));
  const eval::LinearProbeResult r = eval::linear_probe(train.features, train.labels, test.features, test.labels, lp);
  std::printf("linear probe  train: %s  test: %s\n", train_ds->description().c_str(), test_ds->description().c_str());
  std::printf("  lambda      validation accuracy\n");
  for (const auto& [l, a] : r.sweep)
    std::printf("  %-10.3g  %7.2f%%%s\n", l, 100 * a, l == r.lambda ? "  <- chosen" : "");
  std::printf("  test accuracy  %7.2f%%  (%lld examples, %lld classes, fit %.1f s)\n", 100 * r.test_accuracy,
              static_cast<long long>(r.test_count), static_cast<long long>(r.classes), r.seconds);
  nlohmann::json settings = common_settings(o, model);
  settings["train_dataset"] = train_ds->description();
  settings["train_split"] = o.train_split;
  settings["validation_fraction"] = o.validation_fraction;
  settings["seed"] = o.seed;
  settings["max_iterations"] = o.max_iterations;
  settings["lambdas"] = lp.lambdas;
  std::vector<eval::SkippedExample> skipped = train.skipped;
  for (auto s : test.skipped) {
    s.source = "test " + s.source;
    skipped.push_back(s);
  }
  finish(o,
         eval::report_json("linear-probe", test_ds->description(), o.model.model, eval::to_json(r), settings, skipped));
}

void run_retrieval(const EvalOptions& o) {
  hub::ResolvedModel files;
  const Model model = load_model(o.model, &files);
  const auto ds = eval::open_dataset(o.dataset, o.split, dataset_options(o, false));
  const eval::FeatureSet f = eval::extract_image_features(model, *ds, extract_options(o, files.weights));
  std::vector<std::string> texts;
  std::vector<int64_t> text_to_image;
  for (size_t i = 0; i < f.captions.size(); ++i)
    for (const auto& c : f.captions[i]) {
      texts.push_back(c);
      text_to_image.push_back(static_cast<int64_t>(i));
    }
  if (texts.empty()) throw Error(o.dataset + ": no captions in the data set (retrieval needs image-caption pairs)");
  const eval::RetrievalMetrics m = eval::retrieval(model, f.features, texts, text_to_image, o.model.threads);
  std::printf("retrieval  %s  (%lld images, %zu captions)\n", ds->description().c_str(),
              static_cast<long long>(f.features.size(0)), texts.size());
  std::printf("                  R@1      R@5     R@10   mean rank  median rank\n");
  for (const auto& [name, r] :
       {std::pair<const char*, eval::RecallAtK>{"image -> text", m.image_to_text}, {"text -> image", m.text_to_image}})
    std::printf("  %-13s %6.2f%%  %6.2f%%  %6.2f%%  %9.1f  %11.1f\n", name, 100 * r.r1, 100 * r.r5, 100 * r.r10,
                r.mean_rank, r.median_rank);
  finish(o, eval::report_json("retrieval", ds->description(), o.model.model, eval::to_json(m),
                              common_settings(o, model), f.skipped));
}

void add_common(CLI::App* cmd, EvalOptions& o) {
  add_model_options(cmd, o.model);
  cmd->add_option("--dataset", o.dataset,
                  "fashion-mnist, mnist, cifar10, cifar100, folder:DIR, csv:FILE, tsv:FILE or wds:PATTERN")
      ->required();
  cmd->add_option("--split", o.split, "train or test (named data sets)")->check(CLI::IsMember({"train", "test"}));
  cmd->add_option("--data-dir", o.data_dir,
                  "Folder of mnist / cifar10 / cifar100 (fashion-mnist: Debian's by default)");
  cmd->add_option("--batch-size", o.batch_size, "Images per model call")->check(CLI::Range(1, 65536));
  cmd->add_option("--limit", o.limit, "Only the first N examples (0: all)");
  cmd->add_option("--json", o.json_out, "Write the results as JSON to this file");
  cmd->add_option("--cache-dir", o.cache_dir,
                  "Cache image features here (.npy), keyed by model file, data set and resolution");
  cmd->add_flag("--no-progress", o.no_progress, "No progress bar or per-step lines");
  cmd->add_option("--csv-img-key", o.csv_img_key, "csv:/tsv: image path column");
  cmd->add_option("--csv-caption-key", o.csv_caption_key, "csv:/tsv: caption column");
  cmd->add_option("--csv-label-key", o.csv_label_key, "csv:/tsv: label column (class index or name)");
  cmd->add_option("--csv-separator", o.csv_separator, "csv:/tsv: one character, or \"tab\"");
}

}  // namespace

void register_eval(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "Evaluate a model: zero-shot, linear probe, retrieval");
  eval->require_subcommand(1);

  auto zs = std::make_shared<EvalOptions>();
  CLI::App* z = eval->add_subcommand("zeroshot", "Zero-shot classification accuracy (class names x prompt templates)");
  add_common(z, *zs);
  z->add_option("--classes", zs->classes_file, "Class names in label order: one a line, or JSON")
      ->check(CLI::ExistingFile);
  z->add_option("--templates", zs->templates_file, "Prompt templates with {}: one a line, or JSON")
      ->check(CLI::ExistingFile);
  z->add_option("--top-k", zs->top_k, "k of the top-k accuracy")->check(CLI::Range(1, 100000));
  z->callback([zs] { run_zeroshot(*zs); });

  auto lp = std::make_shared<EvalOptions>();
  CLI::App* l = eval->add_subcommand("linear-probe", "Logistic regression on frozen image features (L-BFGS, L2 sweep)");
  add_common(l, *lp);
  l->add_option("--train-dataset", lp->train_dataset, "Training data set (default: --dataset)");
  l->add_option("--train-split", lp->train_split, "Split of the training data set")
      ->check(CLI::IsMember({"train", "test"}));
  l->add_option("--lambdas", lp->lambdas, "L2 strengths to try, comma-separated (default: a sweep 1e-6..1e2, refined)");
  l->add_option("--validation-fraction", lp->validation_fraction, "Share of train held out to choose lambda")
      ->check(CLI::Range(0.01, 0.9));
  l->add_option("--seed", lp->seed, "Seed of the validation split");
  l->add_option("--max-iter", lp->max_iterations, "L-BFGS iterations per fit")->check(CLI::Range(1, 100000));
  l->callback([lp] { run_linear_probe(*lp); });

  auto rt = std::make_shared<EvalOptions>();
  CLI::App* r = eval->add_subcommand("retrieval", "Image-text retrieval recall@1/5/10 (a data set with captions)");
  add_common(r, *rt);
  r->callback([rt] { run_retrieval(*rt); });
}

}  // namespace clip::cli
