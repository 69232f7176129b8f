// The tensors a CLIP model of a given config holds (parameters and buffers, OpenAI key names) and
// their shapes, computed from the config alone. Loading checks a checkpoint against this list
// before any module exists, so a config that claims more than the file holds fails at once,
// without allocating the model it describes. Torch-free arithmetic; it mirrors the constructors in
// model/modules.cpp (a test compares the two).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clip/config.h"

namespace clip::model {

struct ParameterShape {
  std::string name;            // "visual.conv1.weight"
  std::vector<int64_t> shape;  // [] for a scalar
  bool floating = true;        // false for BatchNorm's int64 num_batches_tracked
};

// In module order (each module's parameters, then its buffers, then its children). `config` must
// have passed ModelConfig::validate (its bounds keep every product within int64).
std::vector<ParameterShape> parameter_shapes(const ModelConfig& config);

// "[64, 3, 8, 8]", as c10::str prints sizes.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace clip::model
