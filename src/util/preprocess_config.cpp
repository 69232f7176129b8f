// open_clip's preprocess_cfg as data (include/clip/preprocess_config.h). In util because both the
// torch-free hub and the model's config read it.
#include "clip/preprocess_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "clip/error.h"

namespace clip {

using nlohmann::json;

namespace {
constexpr int kMaxSize = 8192;
}

PreprocessConfig preprocess_config_from_json(const std::string& json_text, PreprocessConfig base,
                                             const std::string& where) {
  json p;
  try {
    p = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (!p.is_object()) throw Error(where + ": expected a JSON object, found " + std::string(p.type_name()));
  PreprocessConfig out = std::move(base);
  try {
    if (p.contains("size")) {
      const json& s = p["size"];
      const int size = s.is_array() ? s.at(0).get<int>() : s.get<int>();
      if (s.is_array() && (s.size() != 2 || s[1].get<int>() != size))
        throw Error(where + ": size " + s.dump() + " is not square (CLIP++ crops squares)", ErrorKind::kUnsupported);
      if (size < 1 || size > kMaxSize)
        throw Error(where + ": size " + std::to_string(size) + " is not in 1.." + std::to_string(kMaxSize));
      out.size = size;
    }
    for (const char* key : {"mean", "std"}) {
      if (!p.contains(key)) continue;
      const json& v = p[key];
      auto& target = std::string(key) == "mean" ? out.mean : out.std;
      if (v.is_number()) {
        target.fill(v.get<float>());
      } else {
        if (!v.is_array() || v.size() != 3)
          throw Error(where + ": \"" + key + "\" must be 3 numbers, found " + v.dump());
        for (int i = 0; i < 3; ++i) target[i] = v[i].get<float>();
      }
    }
    if (p.contains("interpolation")) out.interpolation = p["interpolation"].get<std::string>();
    if (p.contains("resize_mode")) out.resize_mode = p["resize_mode"].get<std::string>();
    if (p.contains("fill_color")) {
      const json& f = p["fill_color"];
      // open_clip also allows a per-channel fill; CLIP++ pads with one value in every channel.
      if (f.is_array()) {
        if (f.size() != 3 || f[0] != f[1] || f[1] != f[2])
          throw Error(where + ": fill_color " + f.dump() + " differs per channel (CLIP++ takes one value)",
                      ErrorKind::kUnsupported);
        out.fill_color = f[0].get<int>();
      } else {
        out.fill_color = f.get<int>();
      }
    }
  } catch (const json::exception& e) {
    throw Error(where + ": " + e.what());
  }
  validate_preprocess_config(out, where);
  return out;
}

std::string preprocess_config_to_json(const PreprocessConfig& p) {
  json j;
  if (p.size > 0) j["size"] = p.size;
  j["mean"] = p.mean;
  j["std"] = p.std;
  j["interpolation"] = p.interpolation;
  j["resize_mode"] = p.resize_mode;
  j["fill_color"] = p.fill_color;
  return j.dump();
}

void validate_preprocess_config(const PreprocessConfig& p, const std::string& where) {
  if (p.size < 0 || p.size > kMaxSize)
    throw Error(where + ": size " + std::to_string(p.size) + " is not in 1.." + std::to_string(kMaxSize));
  for (float m : p.mean)
    if (!std::isfinite(m)) throw Error(where + ": mean must be finite numbers");
  for (float s : p.std)
    if (!(s > 0) || !std::isfinite(s)) throw Error(where + ": std must be positive finite numbers");
  if (p.interpolation != "bicubic" && p.interpolation != "bilinear")
    throw Error(where + ": interpolation \"" + p.interpolation + "\" is not supported (bicubic or bilinear)",
                ErrorKind::kUnsupported);
  if (p.resize_mode != "shortest" && p.resize_mode != "longest" && p.resize_mode != "squash")
    throw Error(where + ": resize_mode \"" + p.resize_mode + "\" is not supported (shortest, longest or squash)",
                ErrorKind::kUnsupported);
  if (p.fill_color < 0 || p.fill_color > 255)
    throw Error(where + ": fill_color " + std::to_string(p.fill_color) + " is not in 0..255");
}

}  // namespace clip
