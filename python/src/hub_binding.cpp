// Model names: open_clip's list_models() (architectures) and list_pretrained() ((arch, tag)
// pairs), from CLIP++'s table (assets/models/pretrained.json, docs/models.md).
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "clip/hub.h"

namespace clip::python {

void bind_hub(py::module_& m) {
  m.def(
      "list_pretrained",
      [] {
        std::vector<std::pair<std::string, std::string>> out;
        for (const hub::PretrainedEntry& e : hub::pretrained_table()) out.emplace_back(e.arch, e.tag);
        return out;
      },
      "(architecture, tag) pairs CLIP++ knows, in open_clip's order");
  m.def(
      "list_models",
      [] {
        std::vector<std::string> out;
        std::set<std::string> seen;
        for (const hub::PretrainedEntry& e : hub::pretrained_table())
          if (seen.insert(e.arch).second) out.push_back(e.arch);
        return out;
      },
      "The architectures of list_pretrained(), each once");
  m.def(
      "openai_names",
      [] {
        std::vector<std::string> out;
        for (const hub::PretrainedEntry& e : hub::pretrained_table())
          if (!e.openai_name.empty()) out.push_back(e.openai_name);
        return out;
      },
      "OpenAI's model names (ViT-B/32, RN50, ...)");
  m.def(
      "check_model_name",
      [](const std::string& name, const std::string& pretrained) {
        const hub::ModelSpec spec = hub::parse_model_name(name, pretrained);
        return spec.kind == hub::SourceKind::kPretrained && spec.entry ? spec.entry->arch : std::string();
      },
      py::arg("name"), py::arg("pretrained") = "",
      "Validates a model name without touching the file system; its architecture when it is a known one");
}

}  // namespace clip::python
