// The names table (assets/models/pretrained.json), read once.
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/hub.h"
#include "hub/validate.h"
#include "util/assets.h"
#include "util/file_io.h"

namespace clip::hub {
namespace {

using nlohmann::json;

PreprocessConfig read_preprocess(const json& j, PreprocessConfig p, const std::string& where) {
  auto triple = [&](const char* key, std::array<float, 3>& out) {
    if (!j.contains(key)) return;
    const json& v = j[key];
    if (!v.is_array() || v.size() != 3) throw Error(where + ": \"" + key + "\" must be a list of 3 numbers");
    for (int i = 0; i < 3; ++i) {
      if (!v[i].is_number()) throw Error(where + ": \"" + key + "\" must be a list of 3 numbers");
      out[i] = v[i].get<float>();
    }
  };
  triple("mean", p.mean);
  triple("std", p.std);
  if (j.contains("interpolation")) p.interpolation = j["interpolation"].get<std::string>();
  if (j.contains("resize_mode")) p.resize_mode = j["resize_mode"].get<std::string>();
  if (j.contains("fill_color")) p.fill_color = j["fill_color"].get<int>();
  return p;
}

std::vector<PretrainedEntry> load_table() {
  const std::string path = util::find_asset("models/pretrained.json");
  try {
    const json j = json::parse(util::read_file(path, 1 << 20));
    const PreprocessConfig defaults = read_preprocess(j.at("defaults").at("preprocess"), PreprocessConfig{}, path);
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
