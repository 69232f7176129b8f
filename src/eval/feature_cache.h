// On-disk cache of extracted features: <dir>/features-<hash>.{npy,labels.npy,json}. The JSON,
// written last, holds the full key (checked on load, so a hash collision is a miss), the rows'
// data set indices, captions and the skipped examples. Every file is written atomically.
#pragma once

#include <optional>
#include <string>

#include "clip/eval.h"

namespace clip::eval {

std::string feature_cache_key(const std::string& model_identity, const std::string& dataset_description, size_t count,
                              int resolution, const std::string& precision);
std::optional<FeatureSet> load_cached_features(const std::string& dir, const std::string& key);
void save_cached_features(const std::string& dir, const std::string& key, const FeatureSet& features);

}  // namespace clip::eval
