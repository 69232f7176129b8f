// immich's machine-learning service on `clip serve` (docs/serve.md has the contract, read from
// immich's machine-learning/immich_ml/main.py and server/src/repositories/
// machine-learning.repository.ts): GET /ping answers "pong"; POST /predict takes a multipart
// form with `entries` (JSON naming the task "clip", the type "visual" or "textual" and the
// modelName) and an `image` file or a `text` field, and answers {"clip": "[...]"} (the normalized
// embedding as a string holding a JSON array: immich stores it as a pgvector literal), with
// "imageHeight" and "imageWidth" for an image. Only CLIP is served: other tasks (faces, OCR) are
// refused.
#pragma once

#include "serve/http_util.h"
#include "serve/model_registry.h"
#include "serve/server.h"

namespace clip::serve {

void handle_immich_predict(ModelRegistry& models, const ServerOptions& o, const Request& req, Response& res);
Response immich_ping();

}  // namespace clip::serve
