// How long jobs (feature extraction, index builds) tell their caller what they are doing. The
// library never writes to stderr itself: the caller chooses how to show it (the `clip` command
// draws a bar on stderr when that is a terminal, and prints notes as lines).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace clip {

// `done` of `total` units of the stage `stage` ("features", "embedding", "shards") are finished.
// Called on the job's thread, after each batch; the last call of a stage has done == total.
using ProgressCallback = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

// A line for the user (a note or a warning), without its newline.
using NoteCallback = std::function<void(const std::string& line)>;

}  // namespace clip
