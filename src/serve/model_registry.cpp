#include "serve/model_registry.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <future>

#include "clip/error.h"

namespace clip::serve {

struct ModelRegistry::Entry {
  ModelSpec spec;
  std::shared_ptr<const LoadedModel> model;                        // null when not loaded
  std::shared_future<std::shared_ptr<const LoadedModel>> loading;  // valid while a load runs
  uint64_t last_used = 0;
  uint64_t weight_bytes = 0;  // of the last load (0 before)
  int embed_dim = 0;
  bool pinned = false;
};

ModelSpec parse_model_spec(const std::string& text) {
  ModelSpec spec;
  // An existing file wins; otherwise NAME=PATH splits at the first '=' unless what precedes it
  // is plainly a path (starts with '/' or '.'); a name may hold '/', as "ViT-B/32" does.
  size_t eq = std::filesystem::exists(text) ? std::string::npos : text.find('=');
  if (eq != std::string::npos && (text[0] == '/' || text[0] == '.')) eq = std::string::npos;
  if (eq != std::string::npos) {
    spec.name = text.substr(0, eq);
    spec.path = text.substr(eq + 1);
    if (spec.name.empty() || spec.path.empty())
      throw Error("--model \"" + text + "\": expected NAME=PATH or PATH, with a non-empty name and path");
    return spec;
  }
  spec.path = text;
  if (spec.path.empty()) throw Error("--model: the path is empty");
  std::filesystem::path p(spec.path);
  if (!p.has_filename()) p = p.parent_path();  // "folder/" names the folder
  spec.name = p.has_extension() ? p.stem().string() : p.filename().string();
  if (spec.name.empty()) throw Error("--model \"" + text + "\": cannot name the model from its path; give NAME=PATH");
  return spec;
}

std::string resolve_served_model(const std::vector<std::string>& served_names, const std::string& requested) {
  for (const std::string& n : served_names)
    if (n == requested) return n;
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  const std::string want = lower(requested);
  for (const std::string& n : served_names)
    if (lower(n) == want) return n;
  return "";
}

uint64_t model_weight_bytes(const Model& model) { return model.weight_bytes(); }

ModelRegistry::ModelRegistry(std::vector<ModelSpec> specs, ModelBudget budget, Loader loader)
    : budget_(budget), loader_(std::move(loader)) {
  if (specs.empty()) throw Error("no model to serve", ErrorKind::kInternal);
  default_name_ = specs.front().name;
  for (ModelSpec& s : specs) {
    for (const auto& e : entries_)
      if (e->spec.name == s.name)
        throw Error("--model: two models are named \"" + s.name + "\" (" + e->spec.path + " and " + s.path +
                    "); name them with NAME=PATH");
    auto e = std::make_shared<Entry>();
    e->spec = std::move(s);
    entries_.push_back(std::move(e));
  }
}

std::shared_ptr<const LoadedModel> ModelRegistry::acquire(const std::string& name) {
  std::shared_ptr<Entry> entry;
  std::promise<std::shared_ptr<const LoadedModel>> promise;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    for (const auto& e : entries_)
      if (e->spec.name == name) entry = e;
    if (!entry) throw Error("no model named \"" + name + "\" is served", ErrorKind::kNotFound);
    entry->last_used = ++clock_;
    if (entry->model) return entry->model;
    if (entry->loading.valid()) {
      // Another request is loading it: wait for that load (its error is ours too).
      auto pending = entry->loading;
      lock.unlock();
      return pending.get();
    }
    entry->loading = promise.get_future().share();
  }
  // This request loads it, outside the lock: other models keep serving meanwhile.
  try {
    std::shared_ptr<const LoadedModel> model = loader_(entry->spec);
    const uint64_t bytes = model_weight_bytes(model->model);
    std::lock_guard<std::mutex> lock(mutex_);
    entry->loading = {};
    if (budget_.max_memory_bytes > 0 && bytes > budget_.max_memory_bytes)
      throw Error("model \"" + name + "\" has " + std::to_string(bytes >> 20) +
                      " MiB of weights, more than --max-memory (" + std::to_string(budget_.max_memory_bytes >> 20) +
                      " MiB)",
                  ErrorKind::kTooLarge);
    entry->model = model;
    entry->weight_bytes = bytes;
    entry->embed_dim = model->model.config().embed_dim;
    entry->last_used = ++clock_;
    evict_locked(entry.get());
    promise.set_value(model);
    return model;
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      entry->loading = {};  // the next request tries again
    }
    promise.set_exception(std::current_exception());
    throw;
  }
}

void ModelRegistry::evict_locked(const Entry* keep) {
  for (;;) {
    size_t count = 0;
    uint64_t bytes = 0;
    Entry* oldest = nullptr;
    for (const auto& e : entries_) {
      if (!e->model) continue;
      ++count;
      bytes += e->weight_bytes;
      if (e.get() != keep && !e->pinned && (!oldest || e->last_used < oldest->last_used)) oldest = e.get();
    }
    const bool over = (budget_.max_models > 0 && count > budget_.max_models) ||
                      (budget_.max_memory_bytes > 0 && bytes > budget_.max_memory_bytes);
    if (!over || !oldest) return;  // within budget, or only the kept and pinned models are left
    oldest->model.reset();         // freed when the last request using it ends
  }
}

void ModelRegistry::pin(const std::string& name, std::shared_ptr<const LoadedModel> model) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<Entry> entry;
  for (const auto& e : entries_)
    if (e->spec.name == name) entry = e;
  if (!entry) {
    entry = std::make_shared<Entry>();
    entry->spec.name = name;
    entries_.push_back(entry);
  }
  entry->weight_bytes = model_weight_bytes(model->model);
  entry->embed_dim = model->model.config().embed_dim;
  entry->model = std::move(model);
  entry->pinned = true;
  entry->last_used = ++clock_;
}

std::vector<std::string> ModelRegistry::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e->spec.name);
  return out;
}

std::string ModelRegistry::resolve(const std::string& requested) const {
  return resolve_served_model(names(), requested);
}

nlohmann::json ModelRegistry::describe() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : entries_) {
    nlohmann::json m = {{"name", e->spec.name}, {"loaded", e->model != nullptr}, {"pinned", e->pinned}};
    if (!e->spec.path.empty()) m["path"] = e->spec.path;
    if (e->embed_dim > 0) m["embed_dim"] = e->embed_dim;
    if (e->model) m["weight_bytes"] = e->weight_bytes;
    out.push_back(std::move(m));
  }
  return out;
}

size_t ModelRegistry::loaded_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const auto& e) { return e->model != nullptr; }));
}

}  // namespace clip::serve
