#include "train/final_report.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "clip/error.h"
#include "clip/eval.h"
#include "eval/report.h"
#include "train/curves.h"
#include "util/file_io.h"

namespace clip::train {
namespace {

using json = nlohmann::json;

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += table[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (two ? uint8_t(bytes[i + 1]) << 8 : 0);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += two ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
  return b;
}

// The example as a PNG data URI, scaled up 3× (nearest) so a 28×28 image is visible.
std::string thumbnail(const data::Example& e) {
  const image::Image img = data::decode_example_image(e);
  const image::Rgb8 rgb = image::to_rgb(img);
  const int k = rgb.width <= 64 ? 3 : 1;
  image::Rgb8 big;
  big.width = rgb.width * k;
  big.height = rgb.height * k;
  big.pixels.resize(static_cast<size_t>(big.width) * big.height * 3);
  for (int y = 0; y < big.height; ++y)
    for (int x = 0; x < big.width; ++x)
      for (int c = 0; c < 3; ++c)
        big.pixels[(static_cast<size_t>(y) * big.width + x) * 3 + c] =
            rgb.pixels[(static_cast<size_t>(y / k) * rgb.width + x / k) * 3 + c];
  return "data:image/png;base64," + base64(image::encode_png(big));
}

}  // namespace

json final_evaluation(const Model& model, const data::Dataset& train_set, const data::Dataset& test_set,
                      const data::ClassPrompts& prompts, const std::string& out_dir, const FinalEvalOptions& o) {
  eval::ExtractOptions eo;
  eo.threads = o.threads;
  auto note = [&](const std::string& line) {
    if (o.on_note) o.on_note(line);
  };
  note("final evaluation: image features of " + test_set.description());
  const eval::FeatureSet test = eval::extract_image_features(model, test_set, eo);

  // Zero-shot with the held-out templates.
  const eval::ZeroShotResult zs = eval::zero_shot(model, test, prompts.classes, prompts.templates, 5, o.threads);

  // Linear probe on frozen features (the CLIP paper's protocol, eval::linear_probe).
  note("final evaluation: image features of " + train_set.description());
  eval::ExtractOptions train_eo = eo;
  train_eo.limit = o.probe_train_limit;
  const eval::FeatureSet train = eval::extract_image_features(model, train_set, train_eo);
  eval::LinearProbeOptions lpo;
  lpo.seed = o.seed;
  note("final evaluation: linear probe (" + std::to_string(train.features.size(0)) + " training features)");
  const eval::LinearProbeResult probe =
      eval::linear_probe(train.features, train.labels, test.features, test.labels, lpo);

  // Retrieval: each of the first test images gets one caption (a class synonym in a held-out
  // template); an image→text hit is its own caption, a text→image hit its own image.
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(o.retrieval_images), test.features.size(0));
  std::vector<std::string> captions;
  std::vector<int64_t> text_to_image;
  std::mt19937_64 rng(o.seed);
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(test.labels[i].item<int64_t>());
    const auto& names = prompts.synonyms[static_cast<size_t>(label)];
    const std::string& name = names[rng() % names.size()];
    std::string c = prompts.templates[rng() % prompts.templates.size()];
    c.replace(c.find("{}"), 2, name);
    captions.push_back(c);
    text_to_image.push_back(i);
  }
  const eval::RetrievalMetrics retrieval =
      eval::retrieval(model, test.features.narrow(0, 0, n), captions, text_to_image, o.threads);

  json results{{"zero_shot", eval::to_json(zs.metrics, prompts.classes)},
               {"linear_probe", eval::to_json(probe)},
               {"retrieval", eval::to_json(retrieval)},
               {"retrieval_note",
                "one caption per image, made from its class: captions of the same class can be identical, so R@1 is "
                "bounded by the class structure"},
               {"test_set", test_set.description()},
               {"versions", eval::versions_json()}};
  util::write_file_atomic(out_dir + "/results.json", results.dump(2) + "\n");

  // The HTML report.
  const auto& m = zs.metrics;
  std::string h =
      "<!doctype html><html><head><meta charset='utf-8'><title>CLIP++ training report</title><style>"
      "body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:3px 8px;text-align:right}"
      "table{border-collapse:collapse}.cm td{border:1px solid #ddd;min-width:2.5em}.ex{display:inline-block;"
      "margin:6px;text-align:center;font-size:12px;width:140px;vertical-align:top}.ok{color:#080}.bad{color:#c00}"
      "</style></head><body><h1>CLIP++ training report</h1>";
  h += "<p>Test set: " + html_escape(test_set.description()) +
       ". Zero-shot uses the held-out templates (none was used in training).</p>";
  h += "<h2>Results</h2><table><tr><th style='text-align:left'>task</th><th>metric</th><th>value</th></tr>";
  h += "<tr><td style='text-align:left'>zero-shot</td><td>top-1</td><td><b>" + pct(m.top1) + "</b></td></tr>";
  h += "<tr><td style='text-align:left'>zero-shot</td><td>top-5</td><td>" + pct(m.topk) + "</td></tr>";
  h += "<tr><td style='text-align:left'>zero-shot</td><td>mean per-class recall</td><td>" +
       pct(m.mean_per_class_recall) + "</td></tr>";
  h += "<tr><td style='text-align:left'>linear probe</td><td>test accuracy (λ=" + std::to_string(probe.lambda) +
       ")</td><td><b>" + pct(probe.test_accuracy) + "</b></td></tr>";
  h += "<tr><td style='text-align:left'>image→text</td><td>R@1 / R@5 / R@10</td><td>" +
       pct(retrieval.image_to_text.r1) + " / " + pct(retrieval.image_to_text.r5) + " / " +
       pct(retrieval.image_to_text.r10) + "</td></tr>";
  h += "<tr><td style='text-align:left'>text→image</td><td>R@1 / R@5 / R@10</td><td>" +
       pct(retrieval.text_to_image.r1) + " / " + pct(retrieval.text_to_image.r5) + " / " +
       pct(retrieval.text_to_image.r10) + "</td></tr></table>";
  h += "<p style='font-size:small'>Retrieval: " + std::to_string(n) +
       " test images, one caption each made from its class; captions of one class can coincide, which bounds R@1.</p>";
  h += "<h2>Training curves</h2>" + curves_svg(out_dir + "/metrics.jsonl");
  h += "<h2>Zero-shot confusion matrix</h2><table class='cm'><tr><th>true \\ predicted</th>";
  for (const auto& c : prompts.classes) h += "<th>" + html_escape(c) + "</th>";
  h += "</tr>";
  const int64_t classes = m.confusion.size(0);
  for (int64_t i = 0; i < classes; ++i) {
    h += "<tr><th>" + html_escape(prompts.classes[static_cast<size_t>(i)]) + "</th>";
    const int64_t row_total = std::max<int64_t>(1, m.confusion[i].sum().item<int64_t>());
    for (int64_t j = 0; j < classes; ++j) {
      const int64_t v = m.confusion[i][j].item<int64_t>();
      const int shade = static_cast<int>(255 - 200.0 * v / row_total);
      h += "<td style='background:rgb(" + std::to_string(shade) + "," + std::to_string(shade) + ",255)'>" +
           std::to_string(v) + "</td>";
    }
    h += "</tr>";
  }
  h += "</table><h2>Example test images</h2><div>";
  const torch::Tensor probs = torch::softmax(zs.logits, 1);
  for (int64_t r = 0; r < std::min<int64_t>(24, probs.size(0)); ++r) {
    const size_t index = test.indices[static_cast<size_t>(r)];
    const auto [p, c] = probs[r].topk(3);
    const int64_t truth = test.labels[r].item<int64_t>();
    h += "<div class='ex'><img width='84' height='84' src='" + thumbnail(test_set.at(index)) +
         "'><br>true: " + html_escape(prompts.classes[static_cast<size_t>(truth)]) + "<br>";
    for (int64_t k = 0; k < 3; ++k) {
      const int64_t cls = c[k].item<int64_t>();
      h += std::string("<span class='") + (cls == truth ? "ok" : "bad") + "'>" +
           html_escape(prompts.classes[static_cast<size_t>(cls)]) + " " + pct(p[k].item<double>()) + "</span><br>";
    }
    h += "</div>";
  }
  h += "</div></body></html>\n";
  util::write_file_atomic(out_dir + "/report.html", h);
  return results;
}

}  // namespace clip::train
