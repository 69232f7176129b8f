// Data sets by name or spec ("fashion-mnist", "cifar10", "folder:DIR", "csv:FILE", "wds:PATTERN"),
// and the shipped class names and prompt templates (assets/datasets/<name>.json).
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/eval.h"
#include "data/prompts.h"
#include "util/assets.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::eval {
namespace {

std::string need_dir(const DatasetOptions& o, const std::string& name, const char* expected) {
  if (o.data_dir.empty())
    throw Error(name + ": give the folder holding the data set (--data-dir), expected " + expected);
  return o.data_dir;
}

// MNIST's four files, gzipped or not, as LeCun's site named them.
std::unique_ptr<data::Dataset> open_mnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test")
    throw Error("mnist: unknown split \"" + split + "\" (expected train or test)");
  const std::string stem = dir + "/" + (split == "train" ? "train" : "t10k");
  auto pick = [](const std::string& base) { return util::file_exists(base) ? base : base + ".gz"; };
  const std::string images = pick(stem + "-images-idx3-ubyte"), labels = pick(stem + "-labels-idx1-ubyte");
  if (!util::file_exists(images))
    throw Error("mnist: " + images + " not found (expected the IDX files of MNIST in --data-dir)",
                ErrorKind::kNotFound);
  std::vector<std::string> digits;
  for (int d = 0; d < 10; ++d) digits.push_back(std::to_string(d));
  return data::open_idx(images, labels, digits);
}

std::vector<std::string> strings_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) throw Error(where + ": expected a list of strings");
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string()) throw Error(where + ": expected a list of strings, found " + std::string(v.type_name()));
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::unique_ptr<data::Dataset> open_dataset(const std::string& spec, const std::string& split,
                                            const DatasetOptions& o) {
  if (spec == "fashion-mnist")
    return o.data_dir.empty() ? data::open_fashion_mnist(split) : data::open_fashion_mnist(split, o.data_dir);
  if (spec == "mnist")
    return open_mnist(need_dir(o, spec, "train-images-idx3-ubyte[.gz] and the other IDX files"), split);
  if (spec == "cifar10" || spec == "cifar100") {
    auto ds = data::open_cifar(need_dir(o, spec, "the extracted CIFAR folder"), split);
    const bool is100 = ds->class_names().size() == 100;
    if (is100 != (spec == "cifar100"))
      throw Error(spec + ": " + o.data_dir + " holds " + (is100 ? "CIFAR-100" : "CIFAR-10") + ", not " + spec);
    return ds;
  }
  if (util::starts_with(spec, "folder:")) return data::open_image_folder(spec.substr(7));
  if (util::starts_with(spec, "csv:") || util::starts_with(spec, "tsv:"))
    return data::open_table(spec.substr(4), o.table);
  if (util::starts_with(spec, "wds:")) return data::read_shards(data::expand_braces(spec.substr(4)), spec);
  throw Error("unknown data set \"" + spec +
              "\" (expected fashion-mnist, mnist, cifar10, cifar100, folder:DIR, csv:FILE, tsv:FILE or wds:PATTERN)");
}

bool has_shipped_class_prompts(const std::string& name) {
  try {
    util::find_asset("datasets/" + name + ".json");
    return true;
  } catch (const Error&) {
    return false;
  }
}

ClassPrompts shipped_class_prompts(const std::string& name) {
  const std::string path = util::find_asset("datasets/" + name + ".json");
  const data::ClassPrompts loaded = data::load_class_prompts(path);  // validates the file
  return ClassPrompts{loaded.classes, loaded.templates, path};
}

std::vector<std::string> read_name_list(const std::string& path, const std::string& key) {
  const std::string text = util::read_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<std::string> out;
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw Error(path + ": starts like JSON but is not valid JSON");
    if (j.is_object()) {
      if (!j.contains(key)) throw Error(path + ": a JSON object without the key \"" + key + "\"");
      out = strings_of(j[key], path + ": \"" + key + "\"");
    } else {
      out = strings_of(j, path);
    }
  } else {
    for (std::string& line : util::split_lines(text)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
  }
  if (out.empty()) throw Error(path + ": no " + key + " in the file");
  return out;
}

}  // namespace clip::eval
