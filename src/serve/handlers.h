// The endpoints that need the model: each takes the loaded state and the request, and fills
// the response or throws HttpError (client errors) / clip::Error.
#pragma once

#include "serve/http_util.h"
#include "serve/loaded.h"
#include "serve/server.h"

namespace clip::serve {

void handle_embed(const Loaded& s, const ServerOptions& o, const Request& req, Response& res);
void handle_classify(const Loaded& s, const ServerOptions& o, const Request& req, Response& res);
void handle_search_text(const Loaded& s, const ServerOptions& o, const Request& req, Response& res);
void handle_search_image(const Loaded& s, const ServerOptions& o, const Request& req, Response& res);
void handle_image(const Loaded& s, const ServerOptions& o, const Request& req, Response& res);
// GET /duplicates?threshold=T: the index's exact and near duplicate groups (index::find_duplicates).
void handle_duplicates(const Loaded& s, const ServerOptions& o, const Request& req, Response& res);

}  // namespace clip::serve
