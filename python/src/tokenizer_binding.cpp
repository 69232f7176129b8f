// clip_cpp._core.Tokenizer: CLIP's tokenizer (ids identical to OpenAI's). Rows come back as one
// int64 [N, context_length] tensor over the block the tokenizer wrote, without a copy.
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "clip/error.h"
#include "clip/tokenizer.h"

namespace clip::python {
namespace {

at::Tensor token_rows(const Tokenizer& tokenizer, const std::vector<std::string>& texts, int context_length,
                      bool truncate, int threads) {
  if (context_length < 2)
    throw Error("context_length is " + std::to_string(context_length) + ", expected at least 2 (start and end tokens)");
  TokenBatch batch;
  {
    py::gil_scoped_release release;
    batch = tokenizer.tokenize(texts, context_length, truncate, threads);
  }
  const std::vector<int64_t> sizes{batch.rows, batch.context_length};
  int64_t* ids = batch.ids.release();
  // The tensor owns the block from here: freed when Python lets go of it.
  return torch::from_blob(
      ids, sizes, [](void* p) { delete[] static_cast<int64_t*>(p); }, at::kLong);
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<Tokenizer>(m, "Tokenizer", "CLIP's byte-level BPE tokenizer (thread-safe)")
      .def(py::init<>(), "OpenAI's vocabulary, shipped with CLIP++")
      .def_static("from_path", &Tokenizer::from_path, py::arg("path"),
                  "A vocabulary from a folder or file: OpenAI's .txt.gz merges, or Hugging Face vocab.json + merges.txt")
      .def_static("with_vocab_size", &Tokenizer::with_vocab_size, py::arg("vocab_size"))
      .def(
          "tokenize",
          [](const Tokenizer& t, const std::vector<std::string>& texts, int context_length, bool truncate,
             int threads) { return token_rows(t, texts, context_length, truncate, threads); },
          py::arg("texts"), py::arg("context_length") = 77, py::arg("truncate") = true, py::arg("threads") = 0,
          "int64 [len(texts), context_length]: [sot] + ids + [eot], zero-padded")
      .def(
          "encode",
          [](const Tokenizer& t, const std::string& text) {
            py::gil_scoped_release release;
            return t.encode(text);
          },
          py::arg("text"), "Token ids without start/end tokens")
      .def("decode", &Tokenizer::decode, py::arg("ids"))
      .def("clean", &Tokenizer::clean, py::arg("text"))
      .def_property_readonly("sot_token_id", &Tokenizer::sot_id)
      .def_property_readonly("eot_token_id", &Tokenizer::eot_id)
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size);
}

}  // namespace clip::python
