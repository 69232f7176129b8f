#include "data/prompts.h"

#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "util/assets.h"
#include "util/file_io.h"

namespace clip::data {
namespace {

std::vector<std::string> string_list(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.contains(key)) return {};
  const nlohmann::json& v = j.at(key);
  if (!v.is_array()) throw Error(where + ": \"" + key + "\" must be a list of strings");
  std::vector<std::string> out;
  for (const auto& s : v) {
    if (!s.is_string() || s.get<std::string>().empty())
      throw Error(where + ": \"" + key + "\" must hold non-empty strings, found " + s.dump());
    out.push_back(s.get<std::string>());
  }
  return out;
}

void check_templates(const std::vector<std::string>& templates, const std::string& key, const std::string& where) {
  for (const std::string& t : templates)
    if (t.find("{}") == std::string::npos)
      throw Error(where + ": template \"" + t + "\" in \"" + key + "\" has no \"{}\" for the class name");
}

}  // namespace

ClassPrompts load_class_prompts(const std::string& name_or_path) {
  const bool is_path = name_or_path.find('/') != std::string::npos || util::file_exists(name_or_path);
  const std::string path = is_path ? name_or_path : util::find_asset("datasets/" + name_or_path + ".json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object with \"classes\" and \"templates\"");
  ClassPrompts p;
  p.classes = string_list(j, "classes", path);
  if (p.classes.empty()) throw Error(path + ": \"classes\" is missing or empty");
  p.templates = string_list(j, "templates", path);
  if (p.templates.empty()) p.templates = {"a photo of a {}."};
  check_templates(p.templates, "templates", path);
  p.train_templates = string_list(j, "train_templates", path);
  if (p.train_templates.empty()) p.train_templates = p.templates;
  check_templates(p.train_templates, "train_templates", path);
  if (j.contains("synonyms")) {
    const nlohmann::json& s = j.at("synonyms");
    if (!s.is_array() || s.size() != p.classes.size())
      throw Error(path + ": \"synonyms\" must be a list with one list per class (" + std::to_string(p.classes.size()) +
                  ")");
    for (size_t i = 0; i < s.size(); ++i) {
      std::vector<std::string> names =
          string_list(nlohmann::json{{"s", s[i]}}, "s", path + " synonyms[" + std::to_string(i) + "]");
      if (names.empty()) throw Error(path + ": synonyms[" + std::to_string(i) + "] is empty");
      p.synonyms.push_back(std::move(names));
    }
  } else {
    for (const std::string& c : p.classes) p.synonyms.push_back({c});
  }
  return p;
}

std::string class_caption(const ClassPrompts& prompts, int label, uint64_t random) {
  if (label < 0 || static_cast<size_t>(label) >= prompts.synonyms.size())
    throw Error("label " + std::to_string(label) + " has no class name (expected 0.." +
                std::to_string(prompts.synonyms.size()) + ")");
  const std::vector<std::string>& names = prompts.synonyms[static_cast<size_t>(label)];
  const std::string& name = names[random % names.size()];
  std::string caption = prompts.train_templates[(random / names.size()) % prompts.train_templates.size()];
  for (size_t at = caption.find("{}"); at != std::string::npos; at = caption.find("{}", at + name.size()))
    caption.replace(at, 2, name);
  return caption;
}

}  // namespace clip::data
