// The training curves as an SVG image: loss (and learning rate) by step, and the held-out
// zero-shot accuracy by step when the run measured it. Read from the run's metrics.jsonl.
#pragma once

#include <string>

namespace clip::train {

// Writes the plot atomically; a metrics file without loss lines gives an empty plot with a note.
void write_curves_svg(const std::string& metrics_jsonl, const std::string& svg_path);
// The same SVG as a string (for embedding in an HTML report).
std::string curves_svg(const std::string& metrics_jsonl);

}  // namespace clip::train
