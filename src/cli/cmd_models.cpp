// clip models list [--cached] [--json] | pull NAME | path NAME | rm NAME: models by name and the
// Hugging Face cache (docs/models.md).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "clip/error.h"
#include "clip/hub.h"
#include "hub/cache.h"
#include "util/strings.h"

namespace clip::cli {
namespace {

struct ModelsOptions {
  std::string name, pretrained;
  bool offline = false, cached_only = false, json = false;
};

struct Row {
  std::string name, openai_name, repo;
  bool quick_gelu = false, known = true;
  bool cached = false;
  uint64_t bytes = 0;
};

bool resolves_offline(const hub::ModelSpec& spec, const hub::HubOptions& h) {
  hub::HubOptions offline = h;
  offline.offline = true;
  try {
    hub::resolve_model(spec, offline);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  return text;
}

void run_list(const ModelsOptions& o) {
  const hub::HubOptions h = hub_options(o.offline);
  std::vector<Row> rows;
  for (const hub::PretrainedEntry& e : hub::pretrained_table()) {
    Row r{e.arch + "/" + e.tag, e.openai_name, e.repo, e.quick_gelu};
    hub::ModelSpec spec;
    spec.kind = hub::SourceKind::kPretrained;
    spec.repo = e.repo;
    spec.entry = e;
    spec.name = r.name;
    r.cached = resolves_offline(spec, h);
    const hub::RepoCache cache(h.cache_dir, e.repo);
    if (cache.exists()) r.bytes = cache.size_on_disk();
    rows.push_back(r);
  }
  // Repos in the cache that the table does not know (hf-hub: names).
  std::error_code ec;
  for (std::filesystem::directory_iterator it(h.cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string folder = it->path().filename().string();
    if (!util::starts_with(folder, "models--")) continue;
    const std::string rest = folder.substr(8);
    const size_t sep = rest.find("--");
    if (sep == std::string::npos) continue;
    const std::string repo = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
    bool known = false;
    for (const Row& r : rows) known = known || r.repo == repo;
    if (known) continue;
    try {
      const hub::ModelSpec spec = hub::parse_model_name("hf-hub:" + repo);
      Row r{"hf-hub:" + repo, "", repo, false, false};
      r.cached = resolves_offline(spec, h);
      r.bytes = hub::RepoCache(h.cache_dir, repo).size_on_disk();
      rows.push_back(r);
    } catch (const Error&) {
      // Not a repo id we accept (another tool's folder): not listed.
    }
  }
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      if (o.cached_only && !r.cached) continue;
      nlohmann::json j{{"name", r.name}, {"repo", r.repo}, {"cached", r.cached}, {"size_bytes", r.bytes}};
      if (r.known) j["quick_gelu"] = r.quick_gelu;
      if (!r.openai_name.empty()) j["openai_name"] = r.openai_name;
      out.push_back(j);
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%-48s %-10s %-56s %s\n", "NAME", "OPENAI", "HUB REPO", "CACHED");
  for (const Row& r : rows) {
    if (o.cached_only && !r.cached) continue;
    const std::string cached =
        r.cached ? "yes, " + megabytes(r.bytes) : (r.bytes ? "partly, " + megabytes(r.bytes) : "");
    std::printf("%-48s %-10s %-56s %s\n", r.name.c_str(), r.openai_name.c_str(), r.repo.c_str(), cached.c_str());
  }
  std::fprintf(stderr, "cache: %s\n", h.cache_dir.c_str());
}

void print_resolved(const hub::ResolvedModel& m) {
  std::printf("%s\n", m.weights.c_str());
  std::fprintf(stderr, "%s%s%s\n", m.description.c_str(), m.config.empty() ? "" : "; config: ", m.config.c_str());
}

void run_pull(const ModelsOptions& o) { print_resolved(resolve_model_files(o.name, o.pretrained, o.offline)); }

// Never downloads: where the model is now.
void run_path(const ModelsOptions& o) { print_resolved(resolve_model_files(o.name, o.pretrained, true)); }

void run_rm(const ModelsOptions& o) {
  const hub::ModelSpec spec = hub::parse_model_name(o.name, o.pretrained);
  if (spec.kind == hub::SourceKind::kPath)
    throw Error("clip models rm " + o.name + ": removes models from the Hugging Face cache only, not files or folders");
  const hub::HubOptions h = hub_options(o.offline);
  const hub::RepoCache cache(h.cache_dir, spec.repo);
  if (!cache.exists())
    throw Error(o.name + ": " + spec.repo + " is not in the cache (" + h.cache_dir + ")", ErrorKind::kNotFound);
  const uint64_t bytes = cache.size_on_disk();
  cache.remove();
  std::printf("removed %s (%s)\n", cache.folder().c_str(), megabytes(bytes).c_str());
}

}  // namespace

void register_models(CLI::App& app) {
  auto o = std::make_shared<ModelsOptions>();
  CLI::App* cmd = app.add_subcommand("models", "Models by name: list, pull, path, rm (the Hugging Face cache)");
  cmd->require_subcommand(1);
  CLI::App* list = cmd->add_subcommand("list", "Known model names, which are cached and their size");
  list->add_flag("--cached", o->cached_only, "Only the models in the cache");
  list->add_flag("--json", o->json, "JSON output");
  list->callback([o] { run_list(*o); });
  for (const auto& [name, help, run] :
       {std::tuple{"pull", "Download a model into the Hugging Face cache (prints its file)", &run_pull},
        std::tuple{"path", "Print the file a model name resolves to (never downloads)", &run_path},
        std::tuple{"rm", "Remove a model's repo from the Hugging Face cache", &run_rm}}) {
    CLI::App* sub = cmd->add_subcommand(name, help);
    sub->add_option("name", o->name, "Model name (see `clip models list`)")->required();
    add_model_name_options(sub, o->pretrained, o->offline);
    auto* fn = run;
    sub->callback([o, fn] { fn(*o); });
  }
}

}  // namespace clip::cli
