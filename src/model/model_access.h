// The libtorch module inside a clip::Model, for the library's own code (training, benchmarks,
// tests) that works on its parameters and layers. Not installed: the public API (clip/model.h)
// keeps the module's type opaque.
#pragma once

#include <memory>

#include "clip/model.h"

namespace clip::model {

struct ModelAccess {
  // Refused on an int8-only model: its module holds placeholders for the weights it runs in int8.
  static std::shared_ptr<ClipModuleImpl> module(const Model& model) {
    model.refuse_if_int8_only("training and access to the model's layers");
    return model.module_;
  }
  static std::shared_ptr<InferencePlan> plan(const Model& model) { return model.inference_; }
};

// The module of `model` (shared: training updates the model's own parameters through it).
inline std::shared_ptr<ClipModuleImpl> module_of(const Model& model) { return ModelAccess::module(model); }
// Its CPU inference plan (inference_plan.h).
inline std::shared_ptr<InferencePlan> plan_of(const Model& model) { return ModelAccess::plan(model); }

}  // namespace clip::model
