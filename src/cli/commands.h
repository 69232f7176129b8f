// Each `clip` subcommand lives in its own cmd_<name>.cpp and registers itself here.
// The command line holds no logic of its own: it parses flags and calls the library.
#pragma once

#include <CLI/CLI.hpp>

namespace clip::cli {

void register_tokenize(CLI::App& app);
void register_models(CLI::App& app);
#ifdef CLIP_HAVE_IMAGE
void register_preprocess(CLI::App& app);
#endif
#ifdef CLIP_HAVE_MODEL
void register_embed(CLI::App& app);
void register_similarity(CLI::App& app);
void register_classify(CLI::App& app);
void register_convert(CLI::App& app);
#endif
#ifdef CLIP_HAVE_TRAIN
void register_train(CLI::App& app);
#endif
#ifdef CLIP_HAVE_EVAL
void register_eval(CLI::App& app);
#endif
#ifdef CLIP_HAVE_INDEX
void register_index(CLI::App& app);
void register_search(CLI::App& app);
#endif
#ifdef CLIP_HAVE_SERVE
void register_serve(CLI::App& app);
#endif

}  // namespace clip::cli
