// The names table (assets/models/pretrained.json), read once.
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/hub.h"
#include "clip/preprocess_config.h"
#include "hub/validate.h"
#include "util/assets.h"
#include "util/file_io.h"

namespace clip::hub {
namespace {

using nlohmann::json;

PreprocessConfig read_preprocess(const json& j, PreprocessConfig base, const std::string& where) {
  return preprocess_config_from_json(j.dump(), std::move(base), where);
}

std::vector<PretrainedEntry> load_table() {
  const std::string path = util::find_asset("models/pretrained.json");
  try {
    const json j = json::parse(util::read_file(path, 1 << 20));
    const PreprocessConfig defaults =
        read_preprocess(j.at("defaults").at("preprocess"), PreprocessConfig{}, path + ": defaults.preprocess");
    std::vector<PretrainedEntry> table;
    for (const json& e : j.at("pretrained")) {
      PretrainedEntry entry;
      entry.arch = e.at("arch").get<std::string>();
      entry.tag = e.at("tag").get<std::string>();
      entry.repo = e.at("repo").get<std::string>();
      validate_repo_id(entry.repo, path + " (" + entry.arch + "/" + entry.tag + ")");
      entry.quick_gelu = e.value("quick_gelu", false);
      entry.preprocess = e.contains("preprocess") ? read_preprocess(e["preprocess"], defaults, path) : defaults;
      table.push_back(std::move(entry));
    }
    for (auto it = j.at("openai").begin(); it != j.at("openai").end(); ++it) {
      const std::string arch = it.value().at("arch").get<std::string>();
      bool found = false;
      for (PretrainedEntry& entry : table) {
        if (entry.arch != arch || entry.tag != "openai") continue;
        entry.openai_name = it.key();
        entry.openai_file = it.value().at("file").get<std::string>();
        found = true;
      }
      if (!found) throw Error(path + ": OpenAI name " + it.key() + " maps to " + arch + ", which has no openai tag");
    }
    return table;
  } catch (const json::exception& e) {
    throw Error(path + ": malformed names table: " + e.what(), ErrorKind::kInternal);
  }
}

}  // namespace

const std::vector<PretrainedEntry>& pretrained_table() {
  static const std::vector<PretrainedEntry> table = load_table();
  return table;
}

}  // namespace clip::hub
