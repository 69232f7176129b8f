// Class names and prompt templates: zero-shot classifiers are built from `classes` × `templates`;
// training captions for labelled data (Fashion-MNIST) from `synonyms` × `train_templates`.
// Shipped for the data sets we know as assets/datasets/<name>.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clip::data {

struct ClassPrompts {
  std::vector<std::string> classes;                // by label index: the names zero-shot uses
  std::vector<std::string> templates;              // evaluation prompts, "{}" for the class
  std::vector<std::vector<std::string>> synonyms;  // by label index: names training captions use
  std::vector<std::string> train_templates;        // training prompts (may be empty: templates)
};

// A shipped set by name ("fashion-mnist": assets/datasets/fashion-mnist.json) or a JSON file with
// the keys above ("classes" required; "synonyms" defaults to each class's name; "train_templates"
// to "templates"). Throws clip::Error naming the file and the key that is wrong.
ClassPrompts load_class_prompts(const std::string& name_or_path);

// A training caption for `label`: one of its synonyms in one of the training templates, picked by
// `random` (any 64-bit value; the same value gives the same caption).
std::string class_caption(const ClassPrompts& prompts, int label, uint64_t random);

}  // namespace clip::data
