// The `clip` command: parses the subcommand and reports errors as `error: <message>`.
// Exit status: cli/exit_status.h (README.md, "Exit status").
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/exit_status.h"
#include "clip/error.h"

int main(int argc, char** argv) {
  CLI::App app{"CLIP++: CLIP in C++ (tokenize, preprocess, embed, train, evaluate, search)"};
  app.require_subcommand(1);
  clip::cli::register_tokenize(app);
  clip::cli::register_models(app);
#ifdef CLIP_HAVE_IMAGE
  clip::cli::register_preprocess(app);
#endif
#ifdef CLIP_HAVE_MODEL
  clip::cli::register_embed(app);
  clip::cli::register_similarity(app);
  clip::cli::register_classify(app);
  clip::cli::register_convert(app);
#endif
#ifdef CLIP_HAVE_TRAIN
  clip::cli::register_train(app);
#endif
#ifdef CLIP_HAVE_EVAL
  clip::cli::register_eval(app);
#endif
#ifdef CLIP_HAVE_INDEX
  clip::cli::register_index(app);
  clip::cli::register_search(app);
#endif
#ifdef CLIP_HAVE_SERVE
  clip::cli::register_serve(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // also validation errors raised from callbacks
    const int rc = app.exit(e);
    return rc == 0 ? 0 : clip::cli::kExitUsage;
  } catch (const clip::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return clip::cli::exit_status_for(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
