#include "clip/model.h"

#include <ATen/autocast_mode.h>
#include <malloc.h>

#include <map>
#include <set>
#include <thread>

#include "clip/error.h"
#include "io/safetensors.h"
#include "model/cpu_support.h"
#include "model/inference_plan.h"
#include "model/int8_checkpoint.h"
#include "model/modules.h"
#include "model/parameter_shapes.h"
#include "model/state_dict.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip {
namespace {

io::DType io_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat16: return io::DType::kF16;
    case torch::kBFloat16: return io::DType::kBF16;
    case torch::kInt8: return io::DType::kI8;
    default: return io::DType::kF32;  // save_safetensors stores only these four
  }
}

// Entries a checkpoint may hold that no CLIP module uses.
bool ignorable(const std::string& key) {
  static const std::set<std::string> exact = {"input_resolution", "context_length", "vocab_size"};
  return exact.count(key) || util::ends_with(key, "num_batches_tracked") || util::ends_with(key, "position_ids") ||
         util::ends_with(key, "attn_mask");
}

std::string list(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min<size_t>(names.size(), 12);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

// `<stem>.config.json` beside a checkpoint file (as the fixtures and our converter lay them out).
std::string sibling_config(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos) return "";
  const std::string candidate = path.substr(0, dot) + ".config.json";
  if (util::file_exists(candidate)) return candidate;
  // open_clip's folders (a Hub snapshot, local-dir:): the weights beside open_clip_config.json.
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string file = path.substr(slash == std::string::npos ? 0 : slash + 1);
  if (file.rfind("open_clip_", 0) == 0 && util::file_exists(dir + "/open_clip_config.json"))
    return dir + "/open_clip_config.json";
  return "";
}

// Checks names, shapes and dtypes of `tensors` against what `config` needs, from the config
// alone: called before the model is built, so that a config claiming more than the file holds
// fails here instead of allocating the model it describes. The names in int8_scales are int8
// weights (an int8-only load), the others must be floating-point where the model's are.
void check_tensors_fit(const ModelConfig& config, const StateDict& tensors,
                       const std::map<std::string, torch::Tensor>& int8_scales, const std::string& source,
                       const std::string& config_origin) {
  std::map<std::string, const model::ParameterShape*> expected;
  const std::vector<model::ParameterShape> shapes = model::parameter_shapes(config);
  for (const auto& s : shapes) expected[s.name] = &s;
  std::set<std::string> seen;
  std::vector<std::string> unexpected, missing;
  for (const auto& [name, t] : tensors) {
    auto it = expected.find(name);
    if (it == expected.end()) {
      if (!ignorable(name)) unexpected.push_back(name);
      continue;
    }
    const model::ParameterShape& want = *it->second;
    if (t.sizes() != c10::IntArrayRef(want.shape))
      throw Error(source + ": tensor \"" + name + "\" has shape " + c10::str(t.sizes()) + ", expected " +
                  model::shape_string(want.shape) + " for " + config_origin);
    if (!t.is_floating_point() && want.floating && !int8_scales.count(name))
      throw Error(source + ": tensor \"" + name + "\" has dtype " + std::string(c10::toString(t.scalar_type())) +
                  ", expected a floating-point tensor");
    seen.insert(name);
  }
  for (const auto& s : shapes)
    if (!seen.count(s.name) && !ignorable(s.name)) missing.push_back(s.name);
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = source + ": checkpoint does not match the model (" + config_origin + ")";
    if (!missing.empty()) msg += "\n  missing: " + list(missing);
    if (!unexpected.empty()) msg += "\n  unexpected: " + list(unexpected);
    throw Error(msg);
  }
}

}  // namespace

Model Model::from_tensors(const ModelConfig& config, StateDict tensors,
                          const std::map<std::string, torch::Tensor>& int8_scales, const std::string& source,
                          const std::string& config_origin, torch::Device device) {
  config.validate(source + " (" + config_origin + ")");
  check_tensors_fit(config, tensors, int8_scales, source, config_origin);
  // Uninitialized: every parameter is overwritten below (check_tensors_fit found them all).
  Model model(config, std::make_shared<model::ClipModuleImpl>(config, model::ParameterInit::kNone), device);
  model::ClipModuleImpl& m = *model.module_;
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : m.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : m.named_buffers(true)) targets[b.key()] = b.value();
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : tensors) {
    auto it = targets.find(name);
    if (it == targets.end()) continue;  // an ignorable entry: check_tensors_fit refused the others
    const auto scales = int8_scales.find(name);
    if (scales == int8_scales.end()) it->second.copy_(t);  // converts: fp16/bf16 -> fp32 is exact (subnormals kept)
    else if (!model.inference_->take_int8_weight(name, t, scales->second, it->second))
      it->second.copy_(model::dequantize_int8(t, scales->second));
    t = torch::Tensor();  // its memory (or mapped pages) can go now
  }
  m.to(device);
  m.eval();
  return model;
}

AutocastScope::AutocastScope(Precision p, torch::Device device) : active_(p == Precision::kBF16) {
  if (!active_) return;
  cpu_ = device.is_cpu();
  if (cpu_) {
    was_enabled_ = at::autocast::is_cpu_enabled();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  } else {
    was_enabled_ = at::autocast::is_enabled();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  }
}

// The cache of bf16 weight copies is kept (not cleared) so that the next call does not cast every
// weight again; it lives in libtorch's thread-local autocast state. (Training clears it after each
// optimizer step: the weights changed.)
AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (cpu_) at::autocast::set_cpu_enabled(was_enabled_);
  else at::autocast::set_enabled(was_enabled_);
}

Tokenizer tokenizer_for_model(const ModelConfig& config) {
  if (config.vocab_size >= 49408) return Tokenizer();
  return Tokenizer::with_vocab_size(config.vocab_size);
}

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::kFP32;
  if (name == "bf16") return Precision::kBF16;
  if (name == "int8") return Precision::kInt8;
  throw Error("precision " + util::quoted_for_message(name) + " is not supported (expected fp32, bf16 or int8)");
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kFP32: return "fp32";
    case Precision::kBF16: return "bf16";
    case Precision::kInt8: return "int8";
  }
  return "fp32";
}

void Model::set_precision(Precision p) {
  if (p == Precision::kInt8 && !device_.is_cpu())
    throw Error("precision int8 runs on the CPU only (the model is on " + device_.str() + ")", ErrorKind::kUnsupported);
  if (p == Precision::kInt8) model::require_int8_support("precision int8");
  if (p != Precision::kInt8 && int8_only())
    throw Error("precision " + precision_name(p) + ": " + model::kInt8OnlyReason +
                    "; it runs precision int8 only (load the file with another precision for " + precision_name(p) +
                    ")",
                ErrorKind::kUnsupported);
  precision_ = p;
}

bool Model::int8_only() const { return inference_->int8_only(); }

void Model::refuse_if_int8_only(const std::string& what) const {
  if (int8_only())
    throw Error(what + ": " + model::kInt8OnlyReason +
                    "; load the file with precision fp32 or bf16 (or LoadOptions::keep_float_weights) for this",
                ErrorKind::kUnsupported);
}

void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

void set_threads(int threads) {
  const unsigned hw = std::thread::hardware_concurrency();
  torch::set_num_threads(threads > 0 ? threads : static_cast<int>(hw == 0 ? 1 : hw));
}

Model::Model(ModelConfig config, std::shared_ptr<model::ClipModuleImpl> module, torch::Device device)
    : config_(std::move(config)),
      module_(std::move(module)),
      inference_(std::make_shared<model::InferencePlan>(module_)),
      device_(device) {}

Model Model::random(const ModelConfig& config, uint64_t seed, torch::Device device) {
  config.validate("random model config");
  torch::manual_seed(seed);
  auto m = std::make_shared<model::ClipModuleImpl>(config);
  m->initialize_parameters();
  m->to(device);
  m->eval();
  return Model(config, m, device);
}

Model Model::from_state_dict(const ModelConfig& config, StateDict tensors, const std::string& source,
                             torch::Device device) {
  return from_tensors(config, std::move(tensors), {}, source, "the given config", device);
}

Model Model::load(const std::string& path, const LoadOptions& options) {
  // Int8-only when only int8 will run: a quantized file's int8 weights then stay int8, straight
  // into the packs, instead of int8 -> float32 -> int8 again (and the float32 copies kept).
  if (options.precision == Precision::kInt8 && options.device.is_cpu()) model::require_int8_support(path);
  const bool int8_only =
      options.precision == Precision::kInt8 && !options.keep_float_weights && options.device.is_cpu();
  model::Checkpoint ck = model::read_checkpoint(path, int8_only);
  StateDict tensors = model::to_openai_names(std::move(ck.tensors), path);
  ModelConfig config;
  std::string origin;
  if (!options.config_path.empty()) {
    config = config_from_file(options.config_path);
    origin = "the config from " + options.config_path;
  } else if (ck.config) {
    config = *ck.config;
    origin = "the config from its metadata";
  } else if (const std::string sib = sibling_config(path); !sib.empty()) {
    config = config_from_file(sib);
    origin = "the config from " + sib;
  } else {
    config = model::infer_config(tensors, path);
    origin = "the config inferred from its tensor shapes";
  }
  if (options.preprocess) config.preprocess = *options.preprocess;
  Model m = from_tensors(config, std::move(tensors), ck.int8_scales, path, origin, options.device);
  m.set_precision(options.precision);
  return m;
}

torch::Tensor Model::encode_image(const torch::Tensor& images, Intermediates* record) const {
  c10::InferenceMode inference;
  AutocastScope autocast(precision_, device_);
  return inference_->encode_image(images.to(device_), record, precision_).to(torch::kFloat32);
}

torch::Tensor Model::encode_text(const torch::Tensor& tokens, Intermediates* record) const {
  c10::InferenceMode inference;
  AutocastScope autocast(precision_, device_);
  return inference_->encode_text(tokens.to(device_), record, precision_).to(torch::kFloat32);
}

torch::Tensor normalize_rows(const torch::Tensor& x) { return x / x.norm(2, -1, true); }

torch::Tensor Model::logits(const torch::Tensor& image_features, const torch::Tensor& text_features) const {
  torch::NoGradGuard no_grad;
  return module_->logit_scale.exp() * torch::matmul(normalize_rows(image_features), normalize_rows(text_features).t());
}

float Model::logit_scale() const { return module_->logit_scale.item<float>(); }

StateDict Model::state_dict() const {
  refuse_if_int8_only("the model's weights (state_dict, saving, converting)");
  StateDict out;
  for (const auto& p : module_->named_parameters(true)) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : module_->named_buffers(true)) out.emplace_back(b.key(), b.value().detach());
  return out;
}

uint64_t Model::weight_bytes() const {
  // Storage, not the logical size: an int8-only model's placeholders hold one float each.
  uint64_t bytes = inference_->int8_weight_bytes();
  for (const auto& p : module_->parameters(true)) bytes += p.storage().nbytes();
  for (const auto& b : module_->buffers(true)) bytes += b.storage().nbytes();
  return bytes;
}

size_t Model::save_safetensors(const std::string& path, torch::ScalarType dtype) const {
  if (dtype != torch::kFloat32 && dtype != torch::kFloat16 && dtype != torch::kBFloat16 && dtype != torch::kInt8)
    throw Error(path + ": weights can be saved as float32, float16, bfloat16 or int8, not " +
                    std::string(c10::toString(dtype)),
                ErrorKind::kUnsupported);
  StateDict stored;
  if (dtype == torch::kInt8) {
    stored = model::quantize_for_saving(state_dict());
  } else {
    for (const auto& [name, t] : state_dict())
      if (t.is_floating_point()) stored.emplace_back(name, t.to(torch::kCPU, dtype).contiguous());
    // (BatchNorm's num_batches_tracked, not floating-point, is not needed to run.)
  }
  std::vector<io::TensorToWrite> tensors;
  for (const auto& [name, t] : stored)
    tensors.push_back({name, io_dtype(t.scalar_type()), t.sizes().vec(), t.data_ptr(), static_cast<size_t>(t.nbytes())});
  std::map<std::string, std::string> metadata{{"format", "pt"}, {"config", config_to_json(config_)}};
  if (dtype == torch::kInt8) metadata["quantization"] = "int8 per output channel: NAME x NAME.int8_scale";
  io::write_safetensors(path, tensors, metadata);
  return tensors.size();
}

void Model::set_gradient_checkpointing(bool on) {
  refuse_if_int8_only("gradient checkpointing (training)");
  module_->transformer->checkpoint_blocks = on;
  if (config_.is_vit()) module_->visual->as<model::VisionTransformerImpl>()->transformer->checkpoint_blocks = on;
}

}  // namespace clip
