#include "train/curves.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "util/file_io.h"
#include "util/strings.h"

namespace clip::train {
namespace {

using Series = std::vector<std::pair<double, double>>;

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// One panel: a polyline per series on shared axes, with min/max labels.
std::string panel(double x0, double y0, double w, double h, const std::string& title,
                  const std::vector<std::pair<Series, std::string>>& series, bool zero_based) {
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const auto& [s, colour] : series)
    for (const auto& [x, y] : s) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  std::string out = "<g font-family='sans-serif' font-size='12'>";
  out += "<rect x='" + fmt(x0) + "' y='" + fmt(y0) + "' width='" + fmt(w) + "' height='" + fmt(h) +
         "' fill='white' stroke='#888'/>";
  out += "<text x='" + fmt(x0) + "' y='" + fmt(y0 - 6) + "' font-weight='bold'>" + title + "</text>";
  if (xmin > xmax) return out + "<text x='" + fmt(x0 + 10) + "' y='" + fmt(y0 + 20) + "'>no data</text></g>";
  if (zero_based) ymin = std::min(ymin, 0.0);
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1;
  for (const auto& [s, colour] : series) {
    std::string pts;
    for (const auto& [x, y] : s)
      pts += fmt(x0 + (x - xmin) / (xmax - xmin) * w) + "," + fmt(y0 + h - (y - ymin) / (ymax - ymin) * h) + " ";
    out += "<polyline fill='none' stroke='" + colour + "' stroke-width='1.5' points='" + pts + "'/>";
  }
  out += "<text x='" + fmt(x0 - 4) + "' y='" + fmt(y0 + 10) + "' text-anchor='end'>" + fmt(ymax) + "</text>";
  out += "<text x='" + fmt(x0 - 4) + "' y='" + fmt(y0 + h) + "' text-anchor='end'>" + fmt(ymin) + "</text>";
  out += "<text x='" + fmt(x0) + "' y='" + fmt(y0 + h + 14) + "'>" + fmt(xmin) + "</text>";
  out += "<text x='" + fmt(x0 + w) + "' y='" + fmt(y0 + h + 14) + "' text-anchor='end'>step " + fmt(xmax) + "</text>";
  return out + "</g>";
}

}  // namespace

std::string curves_svg(const std::string& metrics_jsonl) {
  Series loss, val, lr;
  if (util::file_exists(metrics_jsonl)) {
    for (const std::string& line : util::split_lines(util::read_file(metrics_jsonl))) {
      if (line.empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("step")) continue;
      const double step = j["step"].get<double>();
      if (j.contains("loss")) loss.emplace_back(step, j["loss"].get<double>());
      if (j.contains("lr")) lr.emplace_back(step, j["lr"].get<double>());
      if (j.contains("val_zeroshot_top1")) val.emplace_back(step, 100 * j["val_zeroshot_top1"].get<double>());
    }
  }
  std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='960' height='300' viewBox='0 0 960 300'>";
  svg += "<rect width='960' height='300' fill='#fafafa'/>";
  svg += panel(60, 30, 250, 220, "training loss", {{loss, "#1f77b4"}}, true);
  svg += panel(370, 30, 250, 220, "held-out zero-shot top-1 (%)", {{val, "#d62728"}}, false);
  svg += panel(680, 30, 250, 220, "learning rate", {{lr, "#2ca02c"}}, true);
  return svg + "</svg>\n";
}

void write_curves_svg(const std::string& metrics_jsonl, const std::string& svg_path) {
  util::write_file_atomic(svg_path, curves_svg(metrics_jsonl));
}

}  // namespace clip::train
