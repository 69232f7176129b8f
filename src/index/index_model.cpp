#include "clip/error.h"
#include "clip/index.h"

namespace clip::index {

Model load_index_model(const Manifest& manifest, torch::Device device) {
  LoadOptions lo;
  // The saved config, so that a build made with --config loads the same architecture again.
  lo.config_path = manifest.model_config_file;
  lo.device = device;
  lo.precision = precision_from_name(manifest.model.precision);
  try {
    return Model::load(manifest.model.path, lo);
  } catch (const Error& e) {
    throw Error(std::string("loading the index's model: ") + e.what());
  }
}

}  // namespace clip::index
