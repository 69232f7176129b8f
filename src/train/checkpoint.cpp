#include "train/checkpoint.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/train.h"
#include "io/safetensors.h"
#include "util/file_io.h"

namespace clip::train {
namespace {

using json = nlohmann::json;

// The file is a safetensors file (src/io/safetensors.h: a validated JSON header and raw tensor
// bytes, nothing in it ever runs):
//   model/<name>                  the model's parameters and buffers
//   extra/<i>                     the trainer's tensors outside the model (SigLIP's logit bias; bow-predict's head)
//   adamw/<param>/exp_avg         AdamW's moments per trained parameter, <param> being model/<name>
//   adamw/<param>/exp_avg_sq        or extra/<i>; max_exp_avg_sq only with amsgrad
//   adamw/<param>/max_exp_avg_sq
//   rng                           the CPU generator's state
// and in __metadata__: format, config, options, checkpoint (JSON: position, metrics_bytes, the
// optimizer's parameter groups with their hyper-parameters and parameters by name with their
// step counts) and crc32 (of the data section and the other metadata values, so a damaged file
// is refused: the header's own checks cannot see altered bytes).
constexpr const char* kFormat = "clip-train-checkpoint-1";

std::optional<io::DType> io_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return io::DType::kF64;
    case torch::kFloat32: return io::DType::kF32;
    case torch::kFloat16: return io::DType::kF16;
    case torch::kBFloat16: return io::DType::kBF16;
    case torch::kInt64: return io::DType::kI64;
    case torch::kInt32: return io::DType::kI32;
    case torch::kInt16: return io::DType::kI16;
    case torch::kInt8: return io::DType::kI8;
    case torch::kUInt8: return io::DType::kU8;
    case torch::kBool: return io::DType::kBool;
    default: return std::nullopt;
  }
}

uint32_t crc32_of(uint32_t crc, const void* data, size_t bytes) {
  return static_cast<uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(data), bytes));
}

// The checksum of the data (tensor bytes in file order) followed by the metadata it vouches for.
uint32_t checksum(const std::vector<std::pair<const void*, size_t>>& data,
                  const std::vector<const std::string*>& metadata) {
  uint32_t crc = crc32_of(0, nullptr, 0);
  for (const auto& [bytes, size] : data) crc = crc32_of(crc, bytes, size);
  for (const std::string* m : metadata) {
    const std::string length = std::to_string(m->size()) + ":";  // so bytes cannot move between values
    crc = crc32_of(crc, length.data(), length.size());
    crc = crc32_of(crc, m->data(), m->size());
  }
  return crc;
}

// Every trained tensor by its TensorImpl (the optimizer's key), named as in the file.
std::map<const void*, std::string> tensor_names(torch::nn::Module& model, const std::vector<torch::Tensor>& extra) {
  std::map<const void*, std::string> names;
  for (const auto& p : model.named_parameters(true)) names[p.value().unsafeGetTensorImpl()] = "model/" + p.key();
  for (size_t i = 0; i < extra.size(); ++i) names[extra[i].unsafeGetTensorImpl()] = "extra/" + std::to_string(i);
  return names;
}

std::string impl_key(const torch::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); }

torch::optim::AdamWOptions& adamw_options(torch::optim::OptimizerParamGroup& group) {
  auto* o = dynamic_cast<torch::optim::AdamWOptions*>(&group.options());
  if (!o) throw Error("training checkpoints hold AdamW's state only", ErrorKind::kInternal);
  return *o;
}

// What a checkpoint file holds, validated against the model and optimizer it is to restore into
// before anything is changed, so a refused file leaves them as they were.
class CheckpointReader {
 public:
  CheckpointReader(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   std::vector<torch::Tensor>& extra)
      : path_(path), file_(open(path)), model_(model), optimizer_(optimizer), extra_(extra) {}

  CheckpointContents restore() {
    const json meta = read_metadata();
    // Validate everything first.
    CheckpointContents c;
    const json& position = meta.at("position");
    c.position = {position.at("step").get<int64_t>(), position.at("epoch").get<int64_t>(),
                  position.at("batch_in_epoch").get<int64_t>(), position.at("samples").get<int64_t>()};
    if (c.position.step < 0 || c.position.epoch < 0 || c.position.batch_in_epoch < 0 || c.position.samples < 0)
      fail("position is negative");
    c.metrics_bytes = meta.at("metrics_bytes").get<int64_t>();
    if (c.metrics_bytes < -1) fail("metrics_bytes is negative");
    c.config_json = file_->header().metadata.at("config");
    c.options_json = file_->header().metadata.at("options");
    for (const auto& p : model_.named_parameters(true)) expect("model/" + p.key(), p.value());
    for (const auto& b : model_.named_buffers(true)) expect("model/" + b.key(), b.value());
    for (size_t i = 0; i < extra_.size(); ++i) expect("extra/" + std::to_string(i), extra_[i]);
    const std::map<const void*, std::string> names = tensor_names(model_, extra_);
    const json& groups = meta.at("optimizer");
    if (!groups.is_array() || groups.size() != optimizer_.param_groups().size())
      fail("has " + std::to_string(groups.is_array() ? groups.size() : 0) +
           " optimizer parameter groups, the run has " + std::to_string(optimizer_.param_groups().size()));
    struct ParamState {
      torch::Tensor param;
      std::string name;
      int64_t step;
    };
    std::vector<ParamState> states;
    for (size_t g = 0; g < groups.size(); ++g) {
      const json& group = groups[g];
      const double lr = group.at("lr").get<double>(), beta1 = group.at("beta1").get<double>(),
                   beta2 = group.at("beta2").get<double>(), eps = group.at("eps").get<double>(),
                   weight_decay = group.at("weight_decay").get<double>();
      const bool amsgrad = group.at("amsgrad").get<bool>();  // read here: the restore below must not throw
      if (!(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0) || !(weight_decay >= 0))
        fail("optimizer group " + std::to_string(g) +
             " has hyper-parameters out of range (lr >= 0, 0 <= betas < 1, "
             "eps > 0, weight decay >= 0)");
      auto& params = optimizer_.param_groups()[g].params();
      const json& listed = group.at("params");
      if (!listed.is_array() || listed.size() != params.size())
        fail("optimizer group " + std::to_string(g) + " holds " +
             std::to_string(listed.is_array() ? listed.size() : 0) + " parameters, the run's holds " +
             std::to_string(params.size()));
      for (size_t i = 0; i < params.size(); ++i) {
        const auto name = names.find(params[i].unsafeGetTensorImpl());
        if (name == names.end())
          throw Error("optimizer parameter outside the model and trainer tensors", ErrorKind::kInternal);
        const json& entry = listed[i];
        if (entry.at("name").get<std::string>() != name->second)
          fail("optimizer group " + std::to_string(g) + " parameter " + std::to_string(i) + " is \"" +
               entry.at("name").get<std::string>() + "\", the run's is \"" + name->second + "\"");
        if (!entry.contains("step")) continue;  // not stepped yet (no gradient so far)
        const int64_t step = entry.at("step").get<int64_t>();
        if (step < 0) fail("optimizer step of \"" + name->second + "\" is negative");
        const std::string prefix = "adamw/" + name->second + "/";
        expect(prefix + "exp_avg", params[i]);
        expect(prefix + "exp_avg_sq", params[i]);
        if (amsgrad) expect(prefix + "max_exp_avg_sq", params[i]);
        states.push_back({params[i], name->second, step});
      }
    }
    const torch::Tensor generator_state = at::detail::getDefaultCPUGenerator().get_state();
    expect("rng", generator_state);
    for (const io::TensorInfo& t : file_->header().tensors)
      if (!used_.count(t.name)) fail("holds an unexpected tensor \"" + t.name + "\" (another model?)");

    // Then restore.
    torch::NoGradGuard no_grad;
    for (auto& p : model_.named_parameters(true)) copy("model/" + p.key(), p.value());
    for (auto& b : model_.named_buffers(true)) copy("model/" + b.key(), b.value());
    for (size_t i = 0; i < extra_.size(); ++i) copy("extra/" + std::to_string(i), extra_[i]);
    for (size_t g = 0; g < groups.size(); ++g) {
      auto& o = adamw_options(optimizer_.param_groups()[g]);
      const json& group = groups[g];
      o.lr(group.at("lr").get<double>())
          .betas({group.at("beta1").get<double>(), group.at("beta2").get<double>()})
          .eps(group.at("eps").get<double>())
          .weight_decay(group.at("weight_decay").get<double>())
          .amsgrad(group.at("amsgrad").get<bool>());
    }
    optimizer_.state().clear();
    for (const ParamState& s : states) {
      auto state = std::make_unique<torch::optim::AdamWParamState>();
      state->step(s.step);
      const std::string prefix = "adamw/" + s.name + "/";
      state->exp_avg(copied(prefix + "exp_avg", s.param));
      state->exp_avg_sq(copied(prefix + "exp_avg_sq", s.param));
      if (used_.count(prefix + "max_exp_avg_sq")) state->max_exp_avg_sq(copied(prefix + "max_exp_avg_sq", s.param));
      optimizer_.state()[impl_key(s.param)] = std::move(state);
    }
    torch::Tensor rng = torch::empty_like(generator_state);
    copy("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
    return c;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": training checkpoint " + what); }

  static std::unique_ptr<io::SafetensorsFile> open(const std::string& path) {
    char start[4] = {};
    std::ifstream in(path, std::ios::binary);
    in.read(start, sizeof start);
    if (in && std::memcmp(start, "PK\x03\x04", 4) == 0)
      throw Error(path +
                  ": a libtorch archive, not a training checkpoint: an earlier version of clip wrote its "
                  "checkpoints so, and this one does not read them (libtorch's reader would run code from the "
                  "file); start the run again, or finish it with the version that wrote it");
    return std::make_unique<io::SafetensorsFile>(path);
  }

  // The metadata, checked: format, checksum, and the JSON's shape (the values are read later
  // with .at()/.get<>(), whose exceptions name the field).
  json read_metadata() {
    const auto& m = file_->header().metadata;
    auto field = [&](const char* key) -> const std::string& {
      const auto it = m.find(key);
      if (it == m.end()) fail("lacks the metadata \"" + std::string(key) + "\" (not a training checkpoint?)");
      return it->second;
    };
    if (field("format") != kFormat)
      fail("has format \"" + field("format") + "\", expected \"" + std::string(kFormat) + "\"");
    const std::string& meta = field("checkpoint");
    std::vector<std::pair<const void*, size_t>> data;
    for (const io::TensorInfo& t : file_->header().tensors) data.emplace_back(file_->data(t), t.end - t.begin);
    const uint32_t crc = checksum(data, {&field("config"), &field("options"), &meta});
    if (field("crc32") != std::to_string(crc))
      fail("is damaged: its checksum is " + std::to_string(crc) + ", it records " + field("crc32") +
           " (truncated or altered)");
    json j = json::parse(meta, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("position") || !j.contains("metrics_bytes") || !j.contains("optimizer"))
      fail("metadata \"checkpoint\" is not {position, metrics_bytes, optimizer}");
    return j;
  }

  // The tensor `name` must exist with `like`'s shape and dtype.
  void expect(const std::string& name, const torch::Tensor& like) {
    const io::TensorInfo* t = file_->find(name);
    if (!t) fail("has no tensor \"" + name + "\" (another model or run?)");
    if (t->shape != like.sizes().vec())
      fail("tensor \"" + name + "\" has shape " + c10::str(c10::IntArrayRef(t->shape)) + ", expected " +
           c10::str(like.sizes()));
    const auto dtype = io_dtype(like.scalar_type());
    if (!dtype || *dtype != t->dtype)
      fail("tensor \"" + name + "\" has dtype " + io::dtype_name(t->dtype) + ", expected " +
           std::string(c10::toString(like.scalar_type())));
    used_.insert(name);
  }

  // Copies the validated tensor `name` into `target` (any device).
  void copy(const std::string& name, torch::Tensor& target) const {
    const io::TensorInfo& t = *file_->find(name);
    target.copy_(torch::from_blob(const_cast<uint8_t*>(file_->data(t)), t.shape, target.scalar_type()));
  }
  torch::Tensor copied(const std::string& name, const torch::Tensor& like) const {
    torch::Tensor out = torch::empty_like(like, at::MemoryFormat::Contiguous);
    copy(name, out);
    return out;
  }

  std::string path_;
  std::unique_ptr<io::SafetensorsFile> file_;
  torch::nn::Module& model_;
  torch::optim::Optimizer& optimizer_;
  std::vector<torch::Tensor>& extra_;
  std::set<std::string> used_;
};

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return found;
  static const std::regex pattern("step-([0-9]{8})\\.pt");
  while (const dirent* e = ::readdir(d)) {
    std::cmatch m;
    if (std::regex_match(e->d_name, m, pattern)) found.emplace_back(std::stoll(m[1].str()), dir + "/" + e->d_name);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

std::string checkpoint_path(const std::string& dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld.pt", static_cast<long long>(step));
  return dir + "/" + name;
}

std::string latest_checkpoint(const std::string& dir) {
  const auto found = list_checkpoints(dir);
  return found.empty() ? "" : found.back().second;
}

std::vector<std::string> checkpoints_newest_first(const std::string& dir) {
  std::vector<std::string> paths;
  const auto found = list_checkpoints(dir);
  for (auto it = found.rbegin(); it != found.rend(); ++it) paths.push_back(it->second);
  return paths;
}

void prune_checkpoints(const std::string& dir, int keep) {
  const auto found = list_checkpoints(dir);
  for (size_t i = 0; i + std::max(1, keep) < found.size(); ++i) std::remove(found[i].second.c_str());
}

void remove_stale_checkpoint_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  static const std::regex pattern("step-[0-9]{8}\\.pt\\.tmp(\\.[0-9]+)?");
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d))
    if (std::regex_match(e->d_name, pattern)) stale.push_back(dir + "/" + e->d_name);
  ::closedir(d);
  for (const std::string& path : stale) std::remove(path.c_str());
}

void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const std::vector<torch::Tensor>& extra, const CheckpointContents& c) {
  std::vector<torch::Tensor> keep;  // CPU copies the file is written from
  std::vector<io::TensorToWrite> tensors;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    const auto dtype = io_dtype(t.scalar_type());
    if (!dtype)
      throw Error(path + ": tensor \"" + name + "\" has dtype " + std::string(c10::toString(t.scalar_type())) +
                      ", which a checkpoint cannot hold",
                  ErrorKind::kUnsupported);
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    tensors.push_back(
        {name, *dtype, keep.back().sizes().vec(), keep.back().data_ptr(), static_cast<size_t>(keep.back().nbytes())});
  };
  for (const auto& p : model.named_parameters(true)) add("model/" + p.key(), p.value());
  for (const auto& b : model.named_buffers(true)) add("model/" + b.key(), b.value());
  for (size_t i = 0; i < extra.size(); ++i) add("extra/" + std::to_string(i), extra[i]);

  const std::map<const void*, std::string> names = tensor_names(model, extra);
  json groups = json::array();
  for (auto& group : optimizer.param_groups()) {
    const auto& o = adamw_options(group);
    json params = json::array();
    for (const torch::Tensor& p : group.params()) {
      const auto name = names.find(p.unsafeGetTensorImpl());
      if (name == names.end())
        throw Error("optimizer parameter outside the model and trainer tensors", ErrorKind::kInternal);
      json entry = {{"name", name->second}};
      const auto found = optimizer.state().find(impl_key(p));
      if (found != optimizer.state().end()) {
        const auto* s = dynamic_cast<const torch::optim::AdamWParamState*>(found->second.get());
        if (!s) throw Error("training checkpoints hold AdamW's state only", ErrorKind::kInternal);
        entry["step"] = s->step();
        const std::string prefix = "adamw/" + name->second + "/";
        add(prefix + "exp_avg", s->exp_avg());
        add(prefix + "exp_avg_sq", s->exp_avg_sq());
        if (o.amsgrad()) add(prefix + "max_exp_avg_sq", s->max_exp_avg_sq());
      }
      params.push_back(std::move(entry));
    }
    groups.push_back({{"lr", o.lr()},
                      {"beta1", std::get<0>(o.betas())},
                      {"beta2", std::get<1>(o.betas())},
                      {"eps", o.eps()},
                      {"weight_decay", o.weight_decay()},
                      {"amsgrad", o.amsgrad()},
                      {"params", std::move(params)}});
  }
  add("rng", at::detail::getDefaultCPUGenerator().get_state());

  const TrainPosition& p = c.position;
  const std::string meta = json{
      {"position",
       {{"step", p.step}, {"epoch", p.epoch}, {"batch_in_epoch", p.batch_in_epoch}, {"samples", p.samples}}},
      {"metrics_bytes", c.metrics_bytes},
      {"optimizer",
       std::move(groups)}}.dump();
  std::vector<std::pair<const void*, size_t>> data;
  for (const io::TensorToWrite& t : tensors) data.emplace_back(t.data, t.bytes);
  const uint32_t crc = checksum(data, {&c.config_json, &c.options_json, &meta});
  // Temporary file, fsync, rename, fsync of the folder (util::write_file_atomic).
  io::write_safetensors(path, tensors,
                        {{"format", kFormat},
                         {"config", c.config_json},
                         {"options", c.options_json},
                         {"checkpoint", meta},
                         {"crc32", std::to_string(crc)}});
}

CheckpointContents load_checkpoint(const std::string& path, torch::nn::Module& model,
                                   torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& extra) {
  try {
    return CheckpointReader(path, model, optimizer, extra).restore();
  } catch (const json::exception& e) {
    throw Error(path + ": training checkpoint metadata \"checkpoint\" is malformed: " + e.what());
  } catch (const c10::Error& e) {
    throw Error(path + ": not a readable training checkpoint: " + e.what_without_backtrace());
  }
}

CheckpointContents load_latest_checkpoint(const std::string& dir, torch::nn::Module& model,
                                          torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& extra,
                                          std::string* path,
                                          const std::function<void(const std::string&)>& on_skipped) {
  const std::vector<std::string> candidates = checkpoints_newest_first(dir);
  if (candidates.empty())
    throw OptionError({option("resume"), {" latest: no checkpoint in " + dir}}, ErrorKind::kNotFound);
  std::string failures;
  for (const std::string& candidate : candidates) {
    try {
      CheckpointContents c = load_checkpoint(candidate, model, optimizer, extra);
      *path = candidate;
      return c;
    } catch (const Error& e) {
      if (on_skipped) on_skipped(e.what());
      failures += std::string("\n  ") + e.what();
    }
  }
  throw OptionError({option("resume"), {" latest: no checkpoint in " + dir + " reads whole:" + failures}});
}

}  // namespace clip::train
