// The checks of a run's options before anything starts (OptionError names the fields).
#pragma once

#include "clip/train.h"

namespace clip::train {

// Throws OptionError for the first value (or combination) the run cannot use; `world_size` is the
// number of ranks the global batch is divided between.
void validate_options(const TrainOptions& options, int world_size);

}  // namespace clip::train
