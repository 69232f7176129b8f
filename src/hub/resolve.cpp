// Resolution order: an existing path; the Hugging Face cache (and openai/CLIP's cache for
// OpenAI's names); a download unless offline.
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/hub.h"
#include "clip/preprocess_config.h"
#include "hub/cache.h"
#include "hub/download.h"
#include "hub/layouts.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::hub {
namespace {

using nlohmann::json;

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// open_clip_config.json's preprocess_cfg over the table's (or the defaults).
std::optional<PreprocessConfig> read_preprocess(const std::string& config_path, std::optional<PreprocessConfig> base) {
  if (config_path.empty() || !util::ends_with(config_path, "open_clip_config.json")) return base;
  json j;
  try {
    j = json::parse(util::read_file(config_path, 1 << 20));
  } catch (const json::exception& e) {
    throw Error(config_path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("preprocess_cfg")) return base;
  const json& p = j["preprocess_cfg"];
  if (!p.is_object()) throw Error(config_path + ": \"preprocess_cfg\" must be an object");
  return preprocess_config_from_json(p.dump(), base.value_or(PreprocessConfig{}), config_path + ": preprocess_cfg");
}

ResolvedModel from_folder(const std::string& dir, const std::string& name) {
  for (const RepoLayout* layout : {&local_dir_layout(), &transformers_layout()}) {
    for (const std::string& w : layout->weights) {
      if (!util::file_exists(dir + "/" + w)) continue;
      ResolvedModel m;
      m.weights = dir + "/" + w;
      if (util::file_exists(dir + "/" + layout->config)) m.config = dir + "/" + layout->config;
      m.description = dir + " (folder, " + layout->name + ")";
      return m;
    }
  }
  throw Error(name + ": the folder " + dir +
                  " holds no weights (looked for open_clip_model.safetensors, "
                  "open_clip_pytorch_model.{safetensors,bin,pth}, model.safetensors, pytorch_model.bin)",
              ErrorKind::kNotFound);
}

ResolvedModel from_path(const std::string& path, const std::string& name) {
  if (is_dir(path)) {
    ResolvedModel m = from_folder(path, name);
    m.preprocess = read_preprocess(m.config, std::nullopt);
    return m;
  }
  if (!exists(path)) throw Error(name + ": no such file or folder: " + path, ErrorKind::kNotFound);
  ResolvedModel m;
  m.weights = path;
  m.description = path;
  return m;
}

std::string list(const std::vector<std::string>& files) {
  std::string out;
  for (const std::string& f : files) out += (out.empty() ? "" : ", ") + f;
  return out;
}

std::optional<ResolvedModel> from_cache(const ModelSpec& spec, const HubOptions& o,
                                        const std::vector<const RepoLayout*>& layouts) {
  if (o.cache_dir.empty()) return std::nullopt;
  const RepoCache cache(o.cache_dir, spec.repo);
  if (!cache.exists()) return std::nullopt;
  for (const RepoLayout* layout : layouts) {
    const auto config = cache.cached_file(spec.revision, layout->config);
    if (!config) continue;
    for (const std::string& w : layout->weights) {
      if (auto weights = cache.cached_file(spec.revision, w)) {
        ResolvedModel m;
        m.weights = *weights;
        m.config = *config;
        m.description = spec.repo + "@" + spec.revision + " (cache, " + layout->name + ")";
        return m;
      }
    }
  }
  return std::nullopt;
}

ResolvedModel download(const ModelSpec& spec, const HubOptions& o, const std::vector<const RepoLayout*>& layouts) {
  std::vector<std::string> tried;
  for (const RepoLayout* layout : layouts) {
    std::string config;
    try {
      config = download_file(o, spec.repo, spec.revision, layout->config);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound) throw;
      tried.push_back(layout->config);
      continue;
    }
    for (const std::string& w : layout->weights) {
      try {
        ResolvedModel m;
        m.weights = download_file(o, spec.repo, spec.revision, w);
        m.config = config;
        m.description = spec.repo + "@" + spec.revision + " (downloaded, " + layout->name + ")";
        return m;
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kNotFound) throw;
        tried.push_back(w);
      }
    }
  }
  throw Error(spec.name + ": " + spec.repo + "@" + spec.revision + " has none of the files CLIP++ reads (tried " +
                  list(tried) + ")",
              ErrorKind::kNotFound);
}

[[noreturn]] void offline_miss(const ModelSpec& spec, const HubOptions& o, const RepoLayout& layout) {
  const std::string folder = o.cache_dir + "/" + repo_folder_name(spec.repo);
  throw Error(spec.name + ": " + spec.repo + "@" + spec.revision + " is not in the Hugging Face cache (" + o.cache_dir +
                  ") and downloads are off (--offline or HF_HUB_OFFLINE=1). On a machine online run "
                  "`clip models pull " +
                  spec.name + "` (or `huggingface-cli download " + spec.repo + " " + layout.config + " " +
                  layout.weights.front() + "`) and copy " + folder +
                  " here; or place the "
                  "files as " +
                  folder + "/snapshots/COMMIT/{" + layout.config + "," + layout.weights.front() + "} with " + folder +
                  "/refs/" + spec.revision +
                  " holding COMMIT; or pass --model with the "
                  "path of the weights file or folder",
              ErrorKind::kNotFound);
}

}  // namespace

ResolvedModel resolve_model(const ModelSpec& spec, const HubOptions& o) {
  if (spec.kind == SourceKind::kPath) return from_path(spec.path, spec.name);
  std::optional<PreprocessConfig> base;
  if (spec.entry) base = spec.entry->preprocess;
  if (spec.entry && !spec.entry->openai_file.empty() && !o.openai_cache_dir.empty()) {
    // openai/CLIP's own cache (TorchScript .pt, read as data by the loader, never executed).
    const std::string pt = o.openai_cache_dir + "/" + spec.entry->openai_file;
    if (util::file_exists(pt)) {
      ResolvedModel m;
      m.weights = pt;
      m.preprocess = base;
      m.description = pt + " (openai/CLIP cache)";
      return m;
    }
  }
  // A known tag is an open_clip repo (timm's repos also hold a timm config.json and weights that
  // are not CLIP's); an arbitrary hf-hub: repo may be either.
  std::vector<const RepoLayout*> layouts{&open_clip_layout()};
  if (spec.kind == SourceKind::kHubRepo) layouts.push_back(&transformers_layout());
  std::optional<ResolvedModel> m = from_cache(spec, o, layouts);
  if (!m) {
    if (o.offline) offline_miss(spec, o, open_clip_layout());
    m = download(spec, o, layouts);
  }
  m->preprocess = read_preprocess(m->config, base);
  return *m;
}

ResolvedModel resolve_model(const std::string& name, const HubOptions& options, const std::string& pretrained) {
  // An existing path wins over any name (a folder may well be called ViT-B-32).
  if (pretrained.empty() && exists(name)) return from_path(name, name);
  return resolve_model(parse_model_name(name, pretrained), options);
}

}  // namespace clip::hub
