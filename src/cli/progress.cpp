#include "cli/progress.h"

#include <cstdio>
#include <memory>

#include "util/progress.h"

namespace clip::cli {

ProgressCallback progress_bar_on_stderr() {
  // Shared, because std::function copies its target; the last copy's destruction ends the line.
  auto bar = std::make_shared<std::unique_ptr<util::ProgressBar>>();
  auto stage_of_bar = std::make_shared<std::string>();
  return [bar, stage_of_bar](const std::string& stage, int64_t done, int64_t total) {
    if (total <= 0) return;
    if (!*bar || *stage_of_bar != stage) {
      bar->reset();
      *bar = std::make_unique<util::ProgressBar>(stage, total, true);
      *stage_of_bar = stage;
    }
    (*bar)->update(done);
    if (done >= total) bar->reset();
  };
}

NoteCallback notes_on_stderr() {
  return [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

}  // namespace clip::cli
