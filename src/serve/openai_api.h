// OpenAI's embeddings API on `clip serve` (docs/serve.md): POST /v1/embeddings and GET
// /v1/models, with every error on /v1/* in OpenAI's shape
// {"error": {"message", "type", "param", "code"}}, so OpenAI client libraries work unchanged.
#pragma once

#include <string>

#include "serve/http_util.h"
#include "serve/model_registry.h"
#include "serve/server.h"

namespace clip::serve {

// A client error that names the request field at fault (OpenAI's "param") and a code.
class ApiError : public HttpError {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "")
      : HttpError(status, message), param_(std::move(param)), code_(std::move(code)) {}
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  std::string param_, code_;
};

class ImageUrlFetcher;

// `image_urls`: fetches http(s) URL inputs (--allow-image-urls); null refuses them (400).
void handle_openai_embeddings(ModelRegistry& models, const ServerOptions& o, ImageUrlFetcher* image_urls,
                              const Request& req, Response& res);
void handle_openai_models(const ModelRegistry& models, int64_t created, Response& res);

// An error in OpenAI's shape; "type" follows the status (invalid_request_error for 4xx,
// server_error for 5xx), empty param and code are null.
Response openai_error(int status, const std::string& message, const std::string& param = "",
                      const std::string& code = "");
// The same error as a response of the server's own shape {"error": "..."} (status, headers and
// message kept), e.g. a refusal of the access rules: 401 gets the code "invalid_api_key".
Response as_openai_error(Response generic);

}  // namespace clip::serve
