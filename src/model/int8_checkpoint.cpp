#include "model/int8_checkpoint.h"

#include <map>
#include <regex>

#include "clip/error.h"
#include "model/quantize.h"
#include "util/strings.h"

namespace clip::model {
namespace {

// The ViT's and the text tower's projections are stored [in, out] (x · p); int8 inference runs
// them as the linear pᵀ, so their output channels are p's columns.
bool is_projection(const std::string& name) { return name == "text_projection" || name == "visual.proj"; }

// Names come from the file: quoted with control bytes escaped, and cut.
std::string quoted(const std::string& name) { return util::quoted_for_message(name, 200); }

}  // namespace

bool stored_as_int8(const std::string& name) {
  static const std::regex linear(
      R"((visual\.)?transformer\.resblocks\.[0-9]+\.(attn\.in_proj_weight|attn\.out_proj\.weight|mlp\.c_fc\.weight|mlp\.c_proj\.weight))");
  return is_projection(name) || std::regex_match(name, linear);
}

StateDict quantize_for_saving(const StateDict& weights) {
  StateDict out;
  for (const auto& [name, t] : weights) {
    if (!t.is_floating_point()) continue;  // BatchNorm's num_batches_tracked: not needed to run
    const torch::Tensor w = t.detach().to(torch::kCPU);
    if (stored_as_int8(name) && w.dim() == 2) {
      const bool columns = is_projection(name);
      const QuantizedWeight q = quantize_per_channel(columns ? w.t() : w);
      out.emplace_back(name, columns ? q.values.t().contiguous() : q.values);
      out.emplace_back(name + kInt8ScaleSuffix, columns ? q.scales.reshape({1, -1}) : q.scales.reshape({-1, 1}));
    } else if (w.dim() >= 2) {
      torch::Tensor half = w.to(torch::kFloat16).contiguous();
      if (!torch::isfinite(half).all().item<bool>())
        throw Error("tensor " + quoted(name) + " holds values outside float16's range; save it as f32 or bf16",
                    ErrorKind::kUnsupported);
      out.emplace_back(name, half);
    } else {
      out.emplace_back(name, w.to(torch::kFloat32).contiguous());
    }
  }
  return out;
}

std::map<std::string, torch::Tensor> take_int8_scales(StateDict& tensors, const std::string& source) {
  std::map<std::string, torch::Tensor> scales;
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < tensors.size(); ++i) at[tensors[i].first] = i;
  std::vector<bool> scale_entry(tensors.size(), false), scaled(tensors.size(), false);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [scale_name, scale] = tensors[i];
    if (!util::ends_with(scale_name, kInt8ScaleSuffix)) continue;
    const std::string name = scale_name.substr(0, scale_name.size() - std::string(kInt8ScaleSuffix).size());
    const auto found = at.find(name);
    if (found == at.end())
      throw Error(source + ": tensor " + quoted(scale_name) + " scales a tensor " + quoted(name) +
                  " that the file does not hold");
    const torch::Tensor& q = tensors[found->second].second;
    if (q.scalar_type() != torch::kInt8 || q.dim() != 2)
      throw Error(source + ": tensor " + quoted(name) + " has a scale " + quoted(scale_name) +
                  ", so it must be an int8 matrix; found " + std::string(c10::toString(q.scalar_type())) + " " +
                  c10::str(q.sizes()));
    const bool rows = scale.dim() == 2 && scale.size(0) == q.size(0) && scale.size(1) == 1;
    const bool columns = scale.dim() == 2 && scale.size(0) == 1 && scale.size(1) == q.size(1);
    if (scale.scalar_type() != torch::kFloat32 || !(rows || columns))
      throw Error(source + ": tensor " + quoted(scale_name) + " is " + std::string(c10::toString(scale.scalar_type())) +
                  " " + c10::str(scale.sizes()) + "; expected float32 [" + std::to_string(q.size(0)) + ", 1] or [1, " +
                  std::to_string(q.size(1)) + "] for " + quoted(name) + " " + c10::str(q.sizes()));
    if (!(torch::isfinite(scale).all().item<bool>() && (scale > 0).all().item<bool>()))
      throw Error(source + ": tensor " + quoted(scale_name) + " holds scales that are not finite and positive");
    scales[name] = scale;
    scale_entry[i] = true;
    scaled[found->second] = true;
  }
  StateDict kept;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (scale_entry[i]) continue;
    const auto& [name, t] = tensors[i];
    if (!scaled[i] && t.scalar_type() == torch::kInt8 && stored_as_int8(name))
      throw Error(source + ": tensor " + quoted(name) + " is int8 without its scale " +
                  quoted(name + kInt8ScaleSuffix));
    kept.push_back(std::move(tensors[i]));
  }
  tensors = std::move(kept);
  return scales;
}

torch::Tensor dequantize_int8(const torch::Tensor& values, const torch::Tensor& scales) {
  // Cast, then scale in place: the same values as int8 × float32 with type promotion, whose
  // mixed-type loop took ~2 s for ViT-B/32 where these two vectorized passes take a fraction.
  return values.to(torch::kFloat32).mul_(scales);
}

void dequantize_int8_tensors(StateDict& tensors, const std::string& source) {
  const std::map<std::string, torch::Tensor> scales = take_int8_scales(tensors, source);
  for (auto& [name, t] : tensors)
    if (const auto it = scales.find(name); it != scales.end()) t = dequantize_int8(t, it->second);
}

}  // namespace clip::model
