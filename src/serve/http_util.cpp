#include "serve/http_util.h"

#include <charconv>

namespace clip::serve {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // Replace invalid UTF-8 (e.g. in file names) rather than fail the reply.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

int parse_int(const std::string& name, const std::string& text, int lo, int hi) {
  int value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < lo || value > hi)
    throw HttpError(400, "parameter " + name + " = \"" + text + "\": expected an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
  return value;
}

std::vector<httplib::MultipartFormData> uploaded_files(const httplib::Request& req,
                                                       std::initializer_list<const char*> names) {
  std::vector<httplib::MultipartFormData> out;
  for (const auto& [field, file] : req.files) {
    bool wanted = false;
    for (const char* n : names) wanted = wanted || field == n;
    if (wanted && !file.filename.empty()) out.push_back(file);
  }
  return out;
}

std::string form_value(const httplib::Request& req, const std::string& name) {
  if (req.has_file(name)) {
    const auto f = req.get_file_value(name);
    if (f.filename.empty()) return f.content;
  }
  return req.has_param(name) ? req.get_param_value(name) : "";
}

}  // namespace clip::serve
