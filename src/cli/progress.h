// How the `clip` command shows the library's progress and notes: a bar on stderr (only when it is
// a terminal, util::ProgressBar) and notes as lines on stderr.
#pragma once

#include "clip/progress.h"

namespace clip::cli {

// A bar per stage, started by the stage's first report (done == 0 when the job reports its start, so
// that the ETA counts from there) and ended (its line finished) when done == total or the next stage
// starts. An empty stage (total 0) draws nothing.
ProgressCallback progress_bar_on_stderr();

// Prints each note as a line on stderr.
NoteCallback notes_on_stderr();

}  // namespace clip::cli
