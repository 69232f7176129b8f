// The request and response the endpoints see (the connection layer, http_core, turns Beast's
// messages into these), JSON replies, errors as {"error": "..."} with one table from
// clip::ErrorKind to HTTP status, and strict parsing of request parameters.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clip/error.h"
#include "serve/multipart.h"

namespace clip::serve {

// A client error with its HTTP status (400 bad input, 404, 413 too large, 415, 503 ...).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The HTTP status of a library error: kTooLarge 413, kNotFound 404, kInvalidInput 400,
// kUnsupported 415, kIo and kInternal 500.
int status_for(ErrorKind kind);

struct Response {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
  void set_content(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
};

// One request as the endpoints see it: the decoded path and query, the body, and the form parts
// of a multipart/form-data body.
struct Request {
  std::string method;
  std::string path;                                        // percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::string content_type;
  std::string body;
  bool multipart = false;
  std::vector<FormPart> parts;  // when multipart
  std::string path_id;          // the <id> of /images/<id>

  bool has_param(const std::string& name) const;
  std::string param(const std::string& name) const;  // the first value; empty when absent
};

// Splits a request target into its path and query (RFC 3986 percent-decoding, '+' is a space in
// the query). Throws HttpError 400 for a malformed escape or a target that is not a path.
void parse_target(std::string_view target, std::string* path, std::vector<std::pair<std::string, std::string>>* query);

void send_json(Response& res, int status, const nlohmann::json& body);
void send_error(Response& res, int status, const std::string& message);
Response error_response(int status, const std::string& message);

// A decimal integer in [lo, hi]; anything else is HttpError 400 naming the parameter.
int parse_int(const std::string& name, const std::string& text, int lo, int hi);

// The uploaded files of a multipart request whose field is one of `names`, in order.
std::vector<const FormPart*> uploaded_files(const Request& req, std::initializer_list<const char*> names);

// A form field (multipart, not a file) or query parameter; empty when absent.
std::string form_value(const Request& req, const std::string& name);

// The media type of a Content-Type value, lower-cased, without parameters.
std::string media_type(std::string_view content_type);

}  // namespace clip::serve
