#include "train/checkpoint.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>

#include "clip/error.h"
#include "util/file_io.h"

namespace clip::train {
namespace {

// Archive keys cannot hold '.', which parameter names do.
std::string key_of(const std::string& name) {
  std::string k = name;
  std::replace(k.begin(), k.end(), '.', '~');
  return "model~" + k;
}

torch::Tensor string_tensor(const std::string& s) {
  return torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())}, torch::kUInt8).clone();
}
std::string tensor_string(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()));
}

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
  torch::serialize::OutputArchive archive;
  for (const auto& p : model.named_parameters(true)) archive.write(key_of(p.key()), p.value().detach(), false);
  for (const auto& b : model.named_buffers(true)) archive.write(key_of(b.key()), b.value().detach(), true);
  for (size_t i = 0; i < extra.size(); ++i) archive.write("extra~" + std::to_string(i), extra[i].detach(), true);
  torch::serialize::OutputArchive opt;
  optimizer.save(opt);
  archive.write("optimizer", opt);
  const TrainPosition& p = c.position;
  archive.write("position", torch::tensor({p.step, p.epoch, p.batch_in_epoch, p.samples}, torch::kInt64), true);
  archive.write("config", string_tensor(c.config_json), true);
  archive.write("options", string_tensor(c.options_json), true);
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state(), true);
  archive.write("metrics_bytes", torch::tensor({c.metrics_bytes}, torch::kInt64), true);
  const std::string tmp = util::temp_path_for(path);
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the checkpoint: " + e.what_without_backtrace(), ErrorKind::kIo);
  }
  util::publish_file(tmp, path);  // fsync, rename, fsync of the folder
}

CheckpointContents load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                   std::vector<torch::Tensor>& extra) {
  CheckpointContents c;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::NoGradGuard no_grad;
    auto restore = [&](const std::string& name, torch::Tensor& target) {
      torch::Tensor t;
      if (!archive.try_read(key_of(name), t))
        throw Error(path + ": checkpoint has no tensor \"" + name + "\" (another model?)");
      if (t.sizes() != target.sizes())
        throw Error(path + ": tensor \"" + name + "\" has shape " + c10::str(t.sizes()) + ", the model has " +
                    c10::str(target.sizes()));
      target.copy_(t);
    };
    for (auto& p : model.named_parameters(true)) restore(p.key(), p.value());
    for (auto& b : model.named_buffers(true)) restore(b.key(), b.value());
    for (size_t i = 0; i < extra.size(); ++i) {
      torch::Tensor t;
      if (!archive.try_read("extra~" + std::to_string(i), t)) throw Error(path + ": checkpoint lacks trainer tensor " + std::to_string(i));
      extra[i].copy_(t);
    }
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer.load(opt);
    torch::Tensor position, config, options, rng;
    archive.read("position", position);
    archive.read("config", config);
    archive.read("options", options);
    archive.read("rng", rng);
    if (position.numel() != 4) throw Error(path + ": checkpoint position is malformed");
    const auto* v = position.data_ptr<int64_t>();
    c.position = {v[0], v[1], v[2], v[3]};
    c.config_json = tensor_string(config);
    c.options_json = tensor_string(options);
    torch::Tensor metrics_bytes;  // absent from checkpoints of earlier versions
    if (archive.try_read("metrics_bytes", metrics_bytes) && metrics_bytes.numel() == 1 &&
        metrics_bytes.scalar_type() == torch::kInt64)
      c.metrics_bytes = metrics_bytes.item<int64_t>();
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw Error(path + ": not a readable training checkpoint: " + e.what_without_backtrace());
  }
  return c;
}

CheckpointContents load_latest_checkpoint(const std::string& dir, torch::nn::Module& model,
                                          torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& extra,
                                          std::string* path) {
  const std::vector<std::string> candidates = checkpoints_newest_first(dir);
  if (candidates.empty()) throw Error("--resume latest: no checkpoint in " + dir, ErrorKind::kNotFound);
  std::string failures;
  for (const std::string& candidate : candidates) {
    try {
      // A failed load may have restored part of the state; the next one restores all of it.
      CheckpointContents c = load_checkpoint(candidate, model, optimizer, extra);
      *path = candidate;
      return c;
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: skipping a checkpoint that does not read whole: %s\n", e.what());
      failures += std::string("\n  ") + e.what();
    }
  }
  throw Error("--resume latest: no checkpoint in " + dir + " reads whole:" + failures);
}

}  // namespace clip::train
