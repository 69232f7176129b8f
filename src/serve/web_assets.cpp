#include "serve/web_assets.h"

#include "util/assets.h"
#include "util/file_io.h"

namespace clip::serve {

std::map<std::string, WebFile> load_web_files(const std::string& dir) {
  std::string base = dir;
  if (base.empty()) {
    const std::string page = util::find_asset("web/index.html");
    base = page.substr(0, page.size() - std::string("/index.html").size());
  }
  std::map<std::string, WebFile> files;
  files["/"] = {util::read_file(base + "/index.html"), "text/html; charset=utf-8"};
  files["/app.js"] = {util::read_file(base + "/app.js"), "text/javascript; charset=utf-8"};
  files["/style.css"] = {util::read_file(base + "/style.css"), "text/css; charset=utf-8"};
  return files;
}

}  // namespace clip::serve
