// Small helpers shared by the HTTP handlers: JSON replies, errors as {"error": "..."}, and
// strict parsing of request parameters.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace clip::serve {

// A client error with its HTTP status (400 bad input, 404, 413 too large, 415, 503 ...).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& message);

// A decimal integer in [lo, hi]; anything else is HttpError 400 naming the parameter.
int parse_int(const std::string& name, const std::string& text, int lo, int hi);

// The uploaded files of a multipart request whose field is one of `names`, in order.
std::vector<httplib::MultipartFormData> uploaded_files(const httplib::Request& req,
                                                       std::initializer_list<const char*> names);

// A form field (multipart) or query parameter; empty when absent.
std::string form_value(const httplib::Request& req, const std::string& name);

}  // namespace clip::serve
