// CLIP++'s C++ API in one header: load a model (its config inferred from the checkpoint), tokenize,
// preprocess, encode, compare; and the jobs: data sets, evaluation, training, the image index.
// Link ClipPP::clip (find_package(ClipPP); README "Use from C++").
#pragma once

#include "clip/config.h"     // ModelConfig
#include "clip/data.h"       // clip::data: data sets, tar shards
#include "clip/embedder.h"   // Embedder: files and strings to embeddings
#include "clip/error.h"      // Error, ErrorKind
#include "clip/eval.h"       // clip::eval: zero-shot, linear probe, retrieval
#include "clip/hub.h"        // models by name: resolve_model, the Hugging Face cache
#include "clip/image.h"      // clip::image: decoding, Pillow-exact preprocessing
#include "clip/index.h"      // clip::index: the embedding index of image files
#include "clip/model.h"      // Model: load, encode_image, encode_text, logits
#include "clip/progress.h"   // progress and note callbacks
#include "clip/tokenizer.h"  // Tokenizer
#include "clip/train.h"      // clip::train: contrastive training
