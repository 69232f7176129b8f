#include "model/state_dict.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>

#include "clip/error.h"
#include "io/safetensors.h"
#include "io/torch/torch_checkpoint.h"
#include "model/int8_checkpoint.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::model {
namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

torch::ScalarType to_torch(io::DType t) {
  switch (t) {
    case io::DType::kF64: return torch::kFloat64;
    case io::DType::kF32: return torch::kFloat32;
    case io::DType::kF16: return torch::kFloat16;
    case io::DType::kBF16: return torch::kBFloat16;
    case io::DType::kI64: return torch::kInt64;
    case io::DType::kI32: return torch::kInt32;
    case io::DType::kI16: return torch::kInt16;
    case io::DType::kI8: return torch::kInt8;
    case io::DType::kU8: return torch::kUInt8;
    case io::DType::kBool: return torch::kBool;
  }
  return torch::kFloat32;
}

Checkpoint read_safetensors(const std::string& path, bool keep_int8) {
  const auto file = std::make_shared<const io::SafetensorsFile>(path);
  Checkpoint ck;
  for (const io::TensorInfo& t : file->header().tensors) {
    // Views of the (copy-on-write) mapping, no copy. Each keeps the mapping alive, and hands its
    // pages back to the kernel when dropped: a model copying tensor by tensor and dropping each
    // one never holds the whole file in memory beside itself.
    ck.tensors.emplace_back(t.name,
                            torch::from_blob(
                                const_cast<uint8_t*>(file->data(t)), t.shape, [file, t](void*) { file->release(t); },
                                torch::TensorOptions().dtype(to_torch(t.dtype))));
  }
  // A quantized file (clip convert --dtype int8).
  if (keep_int8) ck.int8_scales = take_int8_scales(ck.tensors, path);
  else dequantize_int8_tensors(ck.tensors, path);
  auto it = file->header().metadata.find("config");
  if (it != file->header().metadata.end())
    ck.config = config_from_json_text(it->second, path + " (metadata \"config\")");
  return ck;
}

Checkpoint read_file_checkpoint(const std::string& path, bool keep_int8) {
  switch (io::detect_checkpoint_format(path)) {
    case io::CheckpointFormat::kSafetensors: return read_safetensors(path, keep_int8);
    case io::CheckpointFormat::kTorchZip:
    case io::CheckpointFormat::kLegacyTorch: return Checkpoint{io::read_torch_state_dict(path), std::nullopt, {}};
    case io::CheckpointFormat::kTorchScript: return Checkpoint{io::read_torchscript_state_dict(path), std::nullopt, {}};
    case io::CheckpointFormat::kUnknown: break;
  }
  throw Error(path +
                  ": not a checkpoint CLIP++ can read (expected safetensors, a torch.save archive, a "
                  "TorchScript archive, or a Hugging Face folder)",
              ErrorKind::kUnsupported);
}

// Hugging Face CLIPModel -> OpenAI names.
StateDict from_hugging_face(const StateDict& in, const std::string& source) {
  std::map<std::string, torch::Tensor> by_name(in.begin(), in.end());
  StateDict out;
  std::set<std::string> used;
  auto take = [&](const std::string& hf) -> torch::Tensor {
    auto it = by_name.find(hf);
    if (it == by_name.end()) return torch::Tensor();
    used.insert(hf);
    return it->second;
  };
  auto map1 = [&](const std::string& hf, const std::string& openai, bool transpose = false) {
    torch::Tensor t = take(hf);
    if (t.defined()) out.emplace_back(openai, transpose ? t.t().contiguous() : t);
  };
  auto map_tower = [&](const std::string& hf_prefix, const std::string& openai_prefix) {
    std::set<int> layers;
    const std::regex layer_re(std::string("^") + hf_prefix + R"(encoder\.layers\.(\d+)\.)");
    for (const auto& [k, v] : in) {
      std::smatch m;
      if (std::regex_search(k, m, layer_re)) layers.insert(std::stoi(m[1]));
    }
    for (int i : layers) {
      const std::string h = hf_prefix + "encoder.layers." + std::to_string(i) + ".";
      const std::string o = openai_prefix + "resblocks." + std::to_string(i) + ".";
      for (const char* p : {"weight", "bias"}) {
        torch::Tensor q = take(h + "self_attn.q_proj." + p), k = take(h + "self_attn.k_proj." + p),
                      v = take(h + "self_attn.v_proj." + p);
        if (q.defined() && k.defined() && v.defined())
          out.emplace_back(o + "attn.in_proj_" + p, torch::cat({q, k, v}, 0));
        else if (q.defined() || k.defined() || v.defined())
          throw Error(source + ": layer " + h + " has only some of self_attn.{q,k,v}_proj." + p);
        map1(h + "self_attn.out_proj." + p, o + "attn.out_proj." + p);
        map1(h + "layer_norm1." + p, o + "ln_1." + p);
        map1(h + "layer_norm2." + p, o + "ln_2." + p);
        map1(h + "mlp.fc1." + p, o + "mlp.c_fc." + p);
        map1(h + "mlp.fc2." + p, o + "mlp.c_proj." + p);
      }
    }
  };
  const std::string V = "vision_model.", T = "text_model.";
  map1(V + "embeddings.patch_embedding.weight", "visual.conv1.weight");
  map1(V + "embeddings.class_embedding", "visual.class_embedding");
  map1(V + "embeddings.position_embedding.weight", "visual.positional_embedding");
  for (const char* p : {"weight", "bias"}) {
    map1(V + "pre_layrnorm." + p, std::string("visual.ln_pre.") + p);
    map1(V + "post_layernorm." + p, std::string("visual.ln_post.") + p);
    map1(T + "final_layer_norm." + p, std::string("ln_final.") + p);
  }
  map1("visual_projection.weight", "visual.proj", true);
  map1(T + "embeddings.token_embedding.weight", "token_embedding.weight");
  map1(T + "embeddings.position_embedding.weight", "positional_embedding");
  map1("text_projection.weight", "text_projection", true);
  map1("logit_scale", "logit_scale");
  map_tower(V, "visual.transformer.");
  map_tower(T, "transformer.");
  for (const auto& [k, v] : in)
    if (!used.count(k)) out.emplace_back(k, v);  // listed by the loader unless ignorable
  return out;
}

int64_t dim(const StateDict& sd, const std::string& name, int d, const std::string& source) {
  for (const auto& [k, v] : sd)
    if (k == name) {
      if (v.dim() <= d)
        throw Error(source + ": tensor \"" + name + "\" has too few dimensions: " + c10::str(v.sizes()));
      return v.size(d);
    }
  throw Error(source + ": cannot infer the architecture: tensor \"" + name + "\" is missing");
}

int count_blocks(const StateDict& sd, const std::string& prefix) {
  std::set<int> idx;
  const std::regex re("^" + std::regex_replace(prefix, std::regex(R"(\.)"), R"(\.)") + R"((\d+)\.)");
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (std::regex_search(k, m, re)) idx.insert(std::stoi(m[1]));
  }
  return static_cast<int>(idx.size());
}

}  // namespace

StateDict to_openai_names(StateDict tensors, const std::string& source) {
  const bool all_module = !tensors.empty() && std::all_of(tensors.begin(), tensors.end(), [](const auto& kv) {
    return util::starts_with(kv.first, "module.");
  });
  if (all_module)
    for (auto& kv : tensors) kv.first = kv.first.substr(7);
  const bool hf = std::any_of(tensors.begin(), tensors.end(), [](const auto& kv) {
    return util::starts_with(kv.first, "vision_model.") || util::starts_with(kv.first, "text_model.");
  });
  if (hf) return from_hugging_face(tensors, source);
  // open_clip's CustomTextCLIP keeps the text tower under "text." with OpenAI's names inside.
  for (auto& kv : tensors)
    if (util::starts_with(kv.first, "text.")) kv.first = kv.first.substr(5);
  return tensors;
}

ModelConfig infer_config(const StateDict& sd, const std::string& source) {
  ModelConfig c;
  const bool vit = std::any_of(sd.begin(), sd.end(), [](const auto& kv) { return kv.first == "visual.proj"; });
  if (vit) {
    c.vision_width = static_cast<int>(dim(sd, "visual.conv1.weight", 0, source));
    c.vision_patch_size = static_cast<int>(dim(sd, "visual.conv1.weight", 3, source));
    c.vision_layers = count_blocks(sd, "visual.transformer.resblocks.");
    const int grid = static_cast<int>(std::lround(std::sqrt(dim(sd, "visual.positional_embedding", 0, source) - 1)));
    c.image_resolution = grid * c.vision_patch_size;
    c.vision_mlp_ratio =
        static_cast<double>(dim(sd, "visual.transformer.resblocks.0.mlp.c_fc.weight", 0, source)) / c.vision_width;
  } else {
    for (int b = 0; b < 4; ++b)
      c.vision_resnet_layers[b] = count_blocks(sd, "visual.layer" + std::to_string(b + 1) + ".");
    c.vision_width = static_cast<int>(dim(sd, "visual.layer1.0.conv1.weight", 0, source));
    const int out =
        static_cast<int>(std::lround(std::sqrt(dim(sd, "visual.attnpool.positional_embedding", 0, source) - 1)));
    c.image_resolution = out * 32;
  }
  c.embed_dim = static_cast<int>(dim(sd, "text_projection", 1, source));
  c.context_length = static_cast<int>(dim(sd, "positional_embedding", 0, source));
  c.vocab_size = static_cast<int>(dim(sd, "token_embedding.weight", 0, source));
  c.transformer_width = static_cast<int>(dim(sd, "ln_final.weight", 0, source));
  c.transformer_layers = count_blocks(sd, "transformer.resblocks.");
  c.text_mlp_ratio =
      static_cast<double>(dim(sd, "transformer.resblocks.0.mlp.c_fc.weight", 0, source)) / c.transformer_width;
  c.validate(source + " (config inferred from tensor shapes)");
  return c;
}

Checkpoint read_checkpoint(const std::string& path, bool keep_int8) {
  if (!is_dir(path)) return read_file_checkpoint(path, keep_int8);
  // A Hugging Face folder: config.json plus model.safetensors or pytorch_model.bin.
  Checkpoint ck;
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    const std::string file = path + "/" + name;
    if (util::file_exists(file)) {
      ck = read_file_checkpoint(file, keep_int8);
      break;
    }
  }
  if (ck.tensors.empty())
    throw Error(path + ": folder holds neither model.safetensors nor pytorch_model.bin", ErrorKind::kNotFound);
  if (util::file_exists(path + "/config.json")) ck.config = config_from_file(path + "/config.json");
  return ck;
}

}  // namespace clip::model
