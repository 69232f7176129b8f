// Each `clip` subcommand lives in its own cmd_<name>.cpp and registers itself here.
// The command line holds no logic of its own: it parses flags and calls the library.
#pragma once

#include <CLI/CLI.hpp>

namespace clip::cli {

void register_tokenize(CLI::App& app);
#ifdef CLIP_HAVE_IMAGE
void register_preprocess(CLI::App& app);
#endif

}  // namespace clip::cli
