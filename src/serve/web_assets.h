// The web page's static files (index.html, app.js, style.css), read once at start-up from
// assets/web (found like every shipped asset: $CLIP_DATA_DIR, the install folder, the source tree).
#pragma once

#include <map>
#include <string>

namespace clip::serve {

struct WebFile {
  std::string content;
  std::string mime_type;
};

// URL path ("/", "/app.js", "/style.css") → file. `dir` empty: the shipped assets/web.
// Throws clip::Error naming the folder when a file is missing.
std::map<std::string, WebFile> load_web_files(const std::string& dir);

}  // namespace clip::serve
