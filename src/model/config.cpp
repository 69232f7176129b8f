#include "clip/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>

#include "clip/error.h"
#include "util/assets.h"
#include "util/file_io.h"

namespace clip {
namespace {

using nlohmann::json;

int get_int(const json& j, const char* key, const std::string& where, int fallback = -1) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback >= 0) return fallback;
    throw Error(where + ": missing field \"" + key + "\"");
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0 || j[key].get<int64_t>() > 1'000'000)
    throw Error(where + ": field \"" + key + "\" must be a non-negative integer, found " + j[key].dump());
  return j[key].get<int>();
}

double get_double(const json& j, const char* key, const std::string& where, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) throw Error(where + ": field \"" + key + "\" must be a number, found " + j[key].dump());
  return j[key].get<double>();
}

bool is_quick_gelu_name(const std::string& act) { return act.rfind("quick_gelu", 0) == 0; }

ModelConfig from_openai_style(const json& j, const std::string& where) {
  ModelConfig c;
  c.embed_dim = get_int(j, "embed_dim", where);
  c.image_resolution = get_int(j, "image_resolution", where);
  if (!j.contains("vision_layers")) throw Error(where + ": missing field \"vision_layers\"");
  const json& vl = j["vision_layers"];
  c.vision_width = get_int(j, "vision_width", where);
  c.vision_patch_size = get_int(j, "vision_patch_size", where, 0);
  if (vl.is_array()) {
    if (vl.size() != 4 || c.vision_patch_size != 0)
      throw Error(where +
                  ": \"vision_layers\" as a list means a ModifiedResNet: expected 4 stages and "
                  "vision_patch_size null, found " +
                  vl.dump());
    for (int i = 0; i < 4; ++i) {
      if (!vl[i].is_number_integer() || vl[i].get<int>() <= 0)
        throw Error(where + ": \"vision_layers\" entries must be positive integers, found " + vl.dump());
      c.vision_resnet_layers[i] = vl[i].get<int>();
    }
  } else {
    c.vision_layers = get_int(j, "vision_layers", where);
  }
  c.vision_heads = get_int(j, "vision_heads", where, 0);
  c.vision_head_width = get_int(j, "vision_head_width", where, 64);
  c.vision_mlp_ratio = get_double(j, "vision_mlp_ratio", where, 4.0);
  c.context_length = get_int(j, "context_length", where, 77);
  c.vocab_size = get_int(j, "vocab_size", where, 49408);
  if (j.contains("text_encoder")) {
    if (!j["text_encoder"].is_string())
      throw Error(where + ": field \"text_encoder\" must be \"transformer\" or \"cbow\", found " +
                  j["text_encoder"].dump());
    c.text_encoder = text_encoder_from_name(j["text_encoder"].get<std::string>(), where + ": field \"text_encoder\"");
  }
  c.transformer_width = get_int(j, "transformer_width", where);
  c.transformer_heads = get_int(j, "transformer_heads", where, 0);
  c.transformer_layers = get_int(j, "transformer_layers", where, c.is_cbow() ? 0 : -1);
  c.text_mlp_ratio = get_double(j, "text_mlp_ratio", where, 4.0);
  c.layer_norm_eps = get_double(j, "layer_norm_eps", where, 1e-5);
  if (j.contains("quick_gelu")) {
    if (!j["quick_gelu"].is_boolean()) throw Error(where + ": field \"quick_gelu\" must be true or false");
    c.quick_gelu = j["quick_gelu"].get<bool>();
  } else if (j.contains("activation") && j["activation"].is_string()) {
    c.quick_gelu = is_quick_gelu_name(j["activation"].get<std::string>());
  }
  if (j.contains("name") && j["name"].is_string()) c.name = j["name"].get<std::string>();
  return c;
}

ModelConfig from_hugging_face(const json& j, const std::string& where) {
  if (!j.contains("text_config") || !j.contains("vision_config") || !j["text_config"].is_object() ||
      !j["vision_config"].is_object())
    throw Error(where + ": a Hugging Face CLIP config needs \"text_config\" and \"vision_config\" objects");
  const json& t = j["text_config"];
  const json& v = j["vision_config"];
  const std::string tw = where + ": text_config", vw = where + ": vision_config";
  ModelConfig c;
  c.embed_dim = get_int(j, "projection_dim", where);
  c.image_resolution = get_int(v, "image_size", vw);
  c.vision_patch_size = get_int(v, "patch_size", vw);
  c.vision_width = get_int(v, "hidden_size", vw);
  c.vision_layers = get_int(v, "num_hidden_layers", vw);
  c.vision_heads = get_int(v, "num_attention_heads", vw);
  c.vision_mlp_ratio = static_cast<double>(get_int(v, "intermediate_size", vw)) / c.vision_width;
  c.transformer_width = get_int(t, "hidden_size", tw);
  c.transformer_layers = get_int(t, "num_hidden_layers", tw);
  c.transformer_heads = get_int(t, "num_attention_heads", tw);
  c.text_mlp_ratio = static_cast<double>(get_int(t, "intermediate_size", tw)) / c.transformer_width;
  c.context_length = get_int(t, "max_position_embeddings", tw);
  c.vocab_size = get_int(t, "vocab_size", tw);
  c.layer_norm_eps = get_double(t, "layer_norm_eps", tw, 1e-5);
  const std::string act =
      t.contains("hidden_act") && t["hidden_act"].is_string() ? t["hidden_act"].get<std::string>() : "quick_gelu";
  if (act != "quick_gelu" && act != "gelu")
    throw Error(tw + ": hidden_act \"" + act + "\" is not supported (expected quick_gelu or gelu)",
                ErrorKind::kUnsupported);
  c.quick_gelu = act == "quick_gelu";
  return c;
}

// open_clip_config.json's "model_cfg" (open_clip's CLIPVisionCfg / CLIPTextCfg, with their
// defaults). Options that change the architecture away from CLIP's are refused.
ModelConfig from_open_clip(const json& m, const std::string& where) {
  if (!m.is_object() || !m.contains("vision_cfg") || !m.contains("text_cfg") || !m["vision_cfg"].is_object() ||
      !m["text_cfg"].is_object())
    throw Error(where + ": \"model_cfg\" needs \"vision_cfg\" and \"text_cfg\" objects");
  const json& v = m["vision_cfg"];
  const json& t = m["text_cfg"];
  const std::string vw = where + ": model_cfg.vision_cfg", tw = where + ": model_cfg.text_cfg";
  auto refuse = [](const json& cfg, const std::string& at, const char* key, const json& neutral) {
    if (cfg.contains(key) && !cfg[key].is_null() && cfg[key] != neutral)
      throw Error(at + ": \"" + key + "\" = " + cfg[key].dump() +
                      " is not supported (CLIP++ runs CLIP's ViT and "
                      "ModifiedResNet towers and its text transformer)",
                  ErrorKind::kUnsupported);
  };
  for (const char* key : {"timm_model_name", "ls_init_value"}) refuse(v, vw, key, nullptr);
  for (const char* key :
       {"attentional_pool", "no_ln_pre", "final_ln_after_pool", "input_patchnorm", "global_average_pool"})
    refuse(v, vw, key, false);
  refuse(v, vw, "pool_type", "tok");
  for (const char* key : {"hf_model_name", "ls_init_value"}) refuse(t, tw, key, nullptr);
  for (const char* key : {"embed_cls", "no_causal_mask", "proj_bias"}) refuse(t, tw, key, false);
  refuse(t, tw, "pool_type", "argmax");
  refuse(t, tw, "proj_type", "linear");
  ModelConfig c;
  c.embed_dim = get_int(m, "embed_dim", where);
  const json size = v.contains("image_size") ? v["image_size"] : json(224);
  if (size.is_array()) {
    if (size.size() != 2 || size[0] != size[1] || !size[0].is_number_integer())
      throw Error(vw + ": image_size " + size.dump() + " is not square", ErrorKind::kUnsupported);
    c.image_resolution = size[0].get<int>();
  } else {
    c.image_resolution = get_int(v, "image_size", vw, 224);
  }
  c.vision_width = get_int(v, "width", vw, 768);
  const int head_width = get_int(v, "head_width", vw, 64);
  if (head_width < 1) throw Error(vw + ": head_width must be positive");
  if (v.contains("layers") && v["layers"].is_array()) {
    const json& layers = v["layers"];
    if (layers.size() != 4)
      throw Error(vw + ": \"layers\" as a list means a ModifiedResNet of 4 stages, found " + layers.dump());
    for (int i = 0; i < 4; ++i) {
      if (!layers[i].is_number_integer() || layers[i].get<int>() <= 0)
        throw Error(vw + ": \"layers\" entries must be positive integers, found " + layers.dump());
      c.vision_resnet_layers[i] = layers[i].get<int>();
    }
    c.vision_patch_size = 0;
    c.vision_heads = c.vision_width * 32 / head_width;
  } else {
    c.vision_layers = get_int(v, "layers", vw, 12);
    c.vision_patch_size = get_int(v, "patch_size", vw, 16);
    c.vision_head_width = head_width;
  }
  c.vision_mlp_ratio = get_double(v, "mlp_ratio", vw, 4.0);
  c.context_length = get_int(t, "context_length", tw, 77);
  c.vocab_size = get_int(t, "vocab_size", tw, 49408);
  c.transformer_width = get_int(t, "width", tw, 512);
  c.transformer_heads = get_int(t, "heads", tw, 8);
  c.transformer_layers = get_int(t, "layers", tw, 12);
  c.text_mlp_ratio = get_double(t, "mlp_ratio", tw, 4.0);
  if (m.contains("quick_gelu")) {
    if (!m["quick_gelu"].is_boolean()) throw Error(where + ": field \"quick_gelu\" must be true or false");
    c.quick_gelu = m["quick_gelu"].get<bool>();
  } else {
    c.quick_gelu = false;  // open_clip's default: nn.GELU
  }
  return c;
}

std::string normalize_name(const std::string& n) {
  std::string out;
  for (char ch : n) {
    if (ch == '/' || ch == '-' || ch == '@' || ch == '_') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  }
  return out;
}

const json& named_configs() {
  static const json configs = json::parse(util::read_file(util::find_asset("models/configs.json")));
  return configs;
}

}  // namespace

std::string text_encoder_name(TextEncoder e) { return e == TextEncoder::kCbow ? "cbow" : "transformer"; }

TextEncoder text_encoder_from_name(const std::string& name, const std::string& where) {
  if (name == "transformer") return TextEncoder::kTransformer;
  if (name == "cbow") return TextEncoder::kCbow;
  throw Error(where + ": text encoder \"" + name + "\" is not known (expected \"transformer\" or \"cbow\")");
}

int ModelConfig::resolved_vision_heads() const {
  if (vision_heads > 0) return vision_heads;
  return is_vit() ? vision_width / vision_head_width : vision_width * 32 / 64;
}

int ModelConfig::resolved_text_heads() const {
  return transformer_heads > 0 ? transformer_heads : transformer_width / 64;
}

// Bounds far above any published CLIP (ViT-bigG/14: width 1664, 48 layers; multilingual
// vocabularies: 250k tokens; image sizes up to 1k), low enough that no product of them overflows
// int64 or int (model/parameter_shapes.cpp, model/modules.cpp). Checked before anything is sized
// from a config, which may come from an untrusted file's metadata.
constexpr int kMaxLayers = 1024;
constexpr int kMaxWidth = 1 << 15;
constexpr int kMaxHeads = 1024;
constexpr int kMaxImageResolution = 1 << 13;
constexpr int kMaxPatchSize = 1024;
constexpr int kMaxContextLength = 1 << 14;
constexpr int kMaxVocabSize = 1 << 21;
constexpr double kMaxMlpRatio = 64;

void ModelConfig::validate(const std::string& where) const {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(where + ": invalid config: " + what);
  };
  auto within = [&](int value, int lo, int hi, const char* field) {
    if (value < lo || value > hi)
      throw Error(where + ": invalid config: " + field + " is " + std::to_string(value) + ", expected " +
                      std::to_string(lo) + " to " + std::to_string(hi),
                  value > hi ? ErrorKind::kTooLarge : ErrorKind::kInvalidInput);
  };
  // Ranges first: the checks below multiply these values.
  within(embed_dim, 1, kMaxWidth, "embed_dim");
  within(image_resolution, 1, kMaxImageResolution, "image_resolution");
  within(vision_width, 1, kMaxWidth, "vision_width");
  within(vision_patch_size, 0, kMaxPatchSize, "vision_patch_size");
  within(vision_heads, 0, kMaxHeads, "vision_heads");
  within(vision_head_width, 1, kMaxWidth, "vision_head_width");
  within(transformer_width, 1, kMaxWidth, "transformer_width");
  within(transformer_heads, 0, kMaxHeads, "transformer_heads");
  // CBOW has no blocks: its transformer_layers must say so (0), so that no config means both.
  if (is_cbow()) within(transformer_layers, 0, 0, "transformer_layers (a CBOW text encoder has none)");
  else within(transformer_layers, 1, kMaxLayers, "transformer_layers");
  within(context_length, 2, kMaxContextLength, "context_length");
  within(vocab_size, 1, kMaxVocabSize, "vocab_size");
  if (is_vit()) within(vision_layers, 1, kMaxLayers, "vision_layers");
  else
    for (int n : vision_resnet_layers) within(n, 1, kMaxLayers, "a ModifiedResNet stage depth (vision_layers)");
  for (const auto& [ratio, field, width] : {std::tuple{vision_mlp_ratio, "vision_mlp_ratio", vision_width},
                                            std::tuple{text_mlp_ratio, "text_mlp_ratio", transformer_width}})
    need(std::isfinite(ratio) && ratio > 0 && ratio <= kMaxMlpRatio && static_cast<int>(width * ratio) >= 1,
         std::string(field) + " must be in (0, " + std::to_string(static_cast<int>(kMaxMlpRatio)) +
             "] with at least one hidden unit, found " + std::to_string(ratio));
  need(std::isfinite(layer_norm_eps) && layer_norm_eps > 0 && layer_norm_eps < 1,
       "layer_norm_eps must be in (0, 1), found " + std::to_string(layer_norm_eps));
  within(resolved_vision_heads(), 1, kMaxHeads, "the vision head count");
  if (!is_cbow()) within(resolved_text_heads(), 1, kMaxHeads, "transformer_heads");
  const int vh = resolved_vision_heads(), th = is_cbow() ? 1 : resolved_text_heads();
  need((is_vit() ? vision_width : vision_width * 32) % vh == 0,
       "vision width must be a multiple of the vision head count (" + std::to_string(vh) + ")");
  need(transformer_width % th == 0, "transformer_width " + std::to_string(transformer_width) +
                                        " is not a multiple of transformer_heads " + std::to_string(th));
  if (is_vit()) {
    need(image_resolution % vision_patch_size == 0, "image_resolution " + std::to_string(image_resolution) +
                                                        " is not a multiple of vision_patch_size " +
                                                        std::to_string(vision_patch_size));
  } else {
    need(vision_width % 2 == 0, "a ModifiedResNet needs an even vision_width (its stem has vision_width / 2 channels)");
    need(image_resolution % 32 == 0, "a ModifiedResNet needs image_resolution divisible by 32");
  }
  validate_preprocess_config(preprocess, where + ": invalid config: preprocess");
  // The model takes image_resolution pixels only; a different preprocess size would not fit it.
  if (preprocess.size != 0 && preprocess.size != image_resolution)
    throw Error(where + ": invalid config: preprocess size " + std::to_string(preprocess.size) +
                    " differs from image_resolution " + std::to_string(image_resolution),
                ErrorKind::kUnsupported);
}

ModelConfig config_from_json_text(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  ModelConfig c = j.contains("model_cfg")                                      ? from_open_clip(j["model_cfg"], where)
                  : (j.contains("text_config") || j.contains("vision_config")) ? from_hugging_face(j, where)
                                                                               : from_openai_style(j, where);
  // open_clip_config.json's "preprocess_cfg"; "preprocess" in our own JSON (config_to_json).
  for (const char* key : {"preprocess_cfg", "preprocess"})
    if (j.contains(key)) c.preprocess = preprocess_config_from_json(j[key].dump(), c.preprocess, where + ": " + key);
  c.validate(where);
  return c;
}

ModelConfig config_from_file(const std::string& path) { return config_from_json_text(util::read_file(path), path); }

std::string config_to_json(const ModelConfig& c) {
  json j;
  if (!c.name.empty()) j["name"] = c.name;
  j["embed_dim"] = c.embed_dim;
  j["image_resolution"] = c.image_resolution;
  if (c.is_vit()) {
    j["vision_layers"] = c.vision_layers;
    j["vision_patch_size"] = c.vision_patch_size;
  } else {
    j["vision_layers"] = c.vision_resnet_layers;
    j["vision_patch_size"] = nullptr;
  }
  j["vision_width"] = c.vision_width;
  j["vision_heads"] = c.resolved_vision_heads();
  j["vision_head_width"] = c.vision_head_width;
  j["vision_mlp_ratio"] = c.vision_mlp_ratio;
  j["context_length"] = c.context_length;
  j["vocab_size"] = c.vocab_size;
  if (c.is_cbow()) j["text_encoder"] = text_encoder_name(c.text_encoder);  // absent: the Transformer
  j["transformer_width"] = c.transformer_width;
  j["transformer_heads"] = c.is_cbow() ? 0 : c.resolved_text_heads();
  j["transformer_layers"] = c.transformer_layers;
  j["text_mlp_ratio"] = c.text_mlp_ratio;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["quick_gelu"] = c.quick_gelu;
  if (c.preprocess != PreprocessConfig{}) j["preprocess"] = json::parse(preprocess_config_to_json(c.preprocess));
  return j.dump(2);
}

std::vector<std::string> named_config_names() {
  std::vector<std::string> names;
  for (auto it = named_configs().begin(); it != named_configs().end(); ++it)
    if (it.key()[0] != '_') names.push_back(it.key());
  return names;
}

ModelConfig named_config(const std::string& name) {
  for (auto it = named_configs().begin(); it != named_configs().end(); ++it) {
    if (it.key()[0] == '_' || normalize_name(it.key()) != normalize_name(name)) continue;
    ModelConfig c = from_openai_style(it.value(), "named config " + it.key());
    c.name = it.key();
    c.validate("named config " + it.key());
    return c;
  }
  std::string known;
  for (const auto& n : named_config_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model name \"" + name + "\" (known: " + known + ")", ErrorKind::kNotFound);
}

}  // namespace clip
