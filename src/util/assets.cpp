#include "util/assets.h"

#include <cstdlib>
#include <vector>

#include "clip/error.h"
#include "util/file_io.h"

namespace clip::util {

std::string find_asset(const std::string& relative_path) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("CLIP_DATA_DIR"); env && *env) dirs.push_back(env);
  dirs.push_back(CLIP_INSTALL_DATA_DIR);
  dirs.push_back(CLIP_SOURCE_DATA_DIR);
  std::string tried;
  for (const auto& d : dirs) {
    const std::string p = d + "/" + relative_path;
    if (file_exists(p)) return p;
    tried += "\n  " + p;
  }
  throw Error("the shipped file " + relative_path + " was not found; looked in:" + tried +
                  "\n(set CLIP_DATA_DIR to the folder holding CLIP++'s assets)",
              ErrorKind::kNotFound);
}

}  // namespace clip::util
