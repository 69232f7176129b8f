// huggingface_hub's environment variables, read the way the Python tools read them.
#include <cstdlib>

#include "clip/hub.h"
#include "util/file_io.h"

namespace clip::hub {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

bool env_true(const char* name) {  // huggingface_hub's _is_true
  std::string v = env(name);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "1" || v == "on" || v == "yes" || v == "true";
}

std::string strip(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

}  // namespace

HubOptions hub_options_from_environment() {
  HubOptions o;
  const std::string home = env("HOME");
  const std::string xdg_cache = env("XDG_CACHE_HOME").empty() ? home + "/.cache" : env("XDG_CACHE_HOME");
  const std::string hf_home = env("HF_HOME").empty() ? xdg_cache + "/huggingface" : env("HF_HOME");
  o.cache_dir = !env("HF_HUB_CACHE").empty() ? env("HF_HUB_CACHE") : hf_home + "/hub";
  o.openai_cache_dir = home + "/.cache/clip";  // openai/CLIP: os.path.expanduser("~/.cache/clip")
  if (!env("HF_ENDPOINT").empty()) o.endpoint = env("HF_ENDPOINT");
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.offline = env_true("HF_HUB_OFFLINE");
  o.token = strip(env("HF_TOKEN"));
  if (o.token.empty()) {
    const std::string token_file = env("HF_TOKEN_PATH").empty() ? hf_home + "/token" : env("HF_TOKEN_PATH");
    if (util::file_exists(token_file)) o.token = strip(util::read_file(token_file, 4096));
  }
  return o;
}

}  // namespace clip::hub
