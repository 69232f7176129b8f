// Evaluation during a run: zero-shot top-1 on the held-out split of labelled data, with eval's
// protocol (evaluation preprocessing, the classifier rebuilt from class names × evaluation
// templates each time, since the text tower trains too).
#pragma once

#include <optional>

#include "clip/train.h"
#include "train/run_setup.h"

namespace clip::train {

// On rank 0 of a run with a held-out split: the top-1, also written as a metrics line and noted
// ("step N: held-out zero-shot top-1 X%"); the model is back in training mode after. Otherwise
// nothing (and no value).
std::optional<double> evaluate_held_out(Run& run, const TrainCallbacks& callbacks);

}  // namespace clip::train
