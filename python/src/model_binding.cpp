// clip_cpp._core.Model: a loaded CLIP model with what open_clip keeps beside it (tokenizer,
// preprocess_cfg). Every computation runs with the GIL released; results are the tensors C++
// wrote (tensors.h).
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "clip/embedder.h"
#include "clip/error.h"
#include "clip/hub.h"
#include "clip/model.h"
#include "embed.h"
#include "tensors.h"

namespace clip::python {
namespace {

struct LoadedModel {
  std::shared_ptr<const Model> model;
  Tokenizer tokenizer;
  hub::PreprocessConfig preprocess;  // size resolved to the model's when the source gave none
  int threads = 0;                   // decoding and tokenizing pool (0: all cores)
  std::string source;                // where the weights came from, for repr
};

LoadedModel load(const std::string& name, const std::string& pretrained, const std::string& precision,
                 const std::string& device, std::optional<int> threads, const std::string& cache_dir,
                 const std::string& config) {
  LoadedModel out;
  LoadOptions lo;
  lo.precision = precision_from_name(precision);
  if (device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error("device \"cuda\": this libtorch has no CUDA device available (use \"cpu\")", ErrorKind::kUnsupported);
    lo.device = torch::Device(torch::kCUDA);
  } else if (device != "cpu") {
    throw Error("device \"" + device + "\": expected \"cpu\" or \"cuda\"");
  }
  if (threads && (*threads < 0 || *threads > 1024))
    throw Error("threads " + std::to_string(*threads) + ", expected 0 (all cores) to 1024");
  out.threads = threads.value_or(0);
  py::gil_scoped_release release;
  set_threads(out.threads);
  hub::HubOptions hub_options = hub::hub_options_from_environment();
  if (!cache_dir.empty()) hub_options.cache_dir = cache_dir;
  const hub::ResolvedModel files = hub::resolve_model(name, hub_options, pretrained);
  lo.config_path = config.empty() ? files.config : config;
  auto model = std::make_shared<Model>(Model::load(files.weights, lo));
  out.tokenizer = tokenizer_for_model(model->config());
  out.preprocess = files.preprocess.value_or(hub::PreprocessConfig{});
  if (out.preprocess.size == 0) out.preprocess.size = model->config().image_resolution;
  out.source = files.description.empty() ? files.weights : files.description;
  out.model = std::move(model);
  return out;
}

// Calls a Python progress callable (or nothing for None) from C++ with the GIL taken.
Progress progress_of(const py::object& callback) {
  if (callback.is_none()) return {};
  const py::object* cb = &callback;  // alive for the whole call that owns it
  return [cb](int64_t done, int64_t total) {
    py::gil_scoped_acquire gil;
    (*cb)(done, total);
  };
}

image::PreprocessOptions preprocess_options(const LoadedModel& m) {
  image::PreprocessOptions o;
  o.size = m.preprocess.size;
  o.mean = m.preprocess.mean;
  o.std = m.preprocess.std;
  o.filter = m.preprocess.interpolation == "bilinear" ? image::Filter::kBilinear : image::Filter::kBicubic;
  o.resize_mode = m.preprocess.resize_mode == "longest"  ? image::ResizeMode::kLongest
                  : m.preprocess.resize_mode == "squash" ? image::ResizeMode::kSquash
                                                         : image::ResizeMode::kShortest;
  o.fill = static_cast<uint8_t>(m.preprocess.fill_color);
  return o;
}

at::Tensor maybe_normalized(const at::Tensor& x, bool normalize) { return normalize ? normalize_rows(x) : x; }

}  // namespace

void bind_model(py::module_& m) {
  m.def("load_model", &load, py::arg("name"), py::arg("pretrained") = "", py::arg("precision") = "fp32",
        py::arg("device") = "cpu", py::arg("threads") = py::none(), py::arg("cache_dir") = "", py::arg("config") = "",
        "Loads a model by name or path (docs/models.md), as `clip --model` does");
  m.def("set_threads", &set_threads, py::arg("threads"), "libtorch's intra-op threads, process-wide (0: all cores)");
  m.def("keep_freed_memory_for_reuse", &keep_freed_memory_for_reuse,
        "Process-wide glibc setting: keep freed memory instead of returning it (faster repeated inference)");

  py::class_<LoadedModel>(m, "Model", "A loaded CLIP model")
      .def_property_readonly("image_size", [](const LoadedModel& l) { return l.model->config().image_resolution; })
      .def_property_readonly("is_vit", [](const LoadedModel& l) { return l.model->config().is_vit(); })
      .def_property_readonly("embed_dim", [](const LoadedModel& l) { return l.model->config().embed_dim; })
      .def_property_readonly("context_length", [](const LoadedModel& l) { return l.model->config().context_length; })
      .def_property_readonly("vocab_size", [](const LoadedModel& l) { return l.model->config().vocab_size; })
      .def_property_readonly("logit_scale", [](const LoadedModel& l) { return l.model->logit_scale(); })
      .def_property_readonly("precision", [](const LoadedModel& l) { return precision_name(l.model->precision()); })
      .def_property_readonly("int8_only", [](const LoadedModel& l) { return l.model->int8_only(); })
      .def_property_readonly("device", [](const LoadedModel& l) { return l.model->device().str(); })
      .def_property_readonly("config_json", [](const LoadedModel& l) { return config_to_json(l.model->config()); })
      .def_property_readonly("source", [](const LoadedModel& l) { return l.source; })
      .def_property_readonly("threads", [](const LoadedModel& l) { return l.threads; })
      .def_property_readonly("tokenizer", [](const LoadedModel& l) { return l.tokenizer; })
      .def_property_readonly("preprocess_cfg",
                             [](const LoadedModel& l) {
                               const hub::PreprocessConfig& p = l.preprocess;
                               py::dict d;
                               d["size"] = p.size;
                               d["mean"] = py::make_tuple(p.mean[0], p.mean[1], p.mean[2]);
                               d["std"] = py::make_tuple(p.std[0], p.std[1], p.std[2]);
                               d["interpolation"] = p.interpolation;
                               d["resize_mode"] = p.resize_mode;
                               d["fill_color"] = p.fill_color;
                               return d;
                             })
      .def(
          "encode_image",
          [](const LoadedModel& l, const at::Tensor& images, bool normalize) {
            const at::Tensor x = image_input(images, "encode_image: images");
            at::Tensor out;
            {
              py::gil_scoped_release release;
              out = maybe_normalized(l.model->encode_image(x), normalize);
            }
            return for_python(out);
          },
          py::arg("images"), py::arg("normalize") = false)
      .def(
          "encode_text",
          [](const LoadedModel& l, const at::Tensor& tokens, bool normalize) {
            at::Tensor out;
            {
              py::gil_scoped_release release;
              const at::Tensor ids = token_input(tokens, "encode_text: text");
              out = maybe_normalized(l.model->encode_text(ids), normalize);
            }
            return for_python(out);
          },
          py::arg("text"), py::arg("normalize") = false)
      .def(
          "forward",
          [](const LoadedModel& l, const at::Tensor& images, const at::Tensor& tokens) {
            const at::Tensor x = image_input(images, "model: image");
            at::Tensor image_features, text_features, scale;
            {
              py::gil_scoped_release release;
              const at::Tensor ids = token_input(tokens, "model: text");
              image_features = normalize_rows(l.model->encode_image(x));
              text_features = normalize_rows(l.model->encode_text(ids));
              scale = torch::scalar_tensor(std::exp(l.model->logit_scale()), at::kFloat);
            }
            return py::make_tuple(for_python(image_features), for_python(text_features), scale);
          },
          py::arg("image"), py::arg("text"),
          "(normalized image features, normalized text features, logit_scale.exp()) as open_clip's forward")
      .def(
          "embed_image_files",
          [](const LoadedModel& l, const std::vector<std::string>& paths, int batch_size, bool normalize,
             const py::object& progress) {
            const Progress report = progress_of(progress);
            py::gil_scoped_release release;
            return maybe_normalized(
                embed_image_files(*l.model, preprocess_options(l), paths, batch_size, l.threads, report), normalize);
          },
          py::arg("paths"), py::arg("batch_size") = 32, py::arg("normalize") = false, py::arg("progress") = py::none())
      .def(
          "embed_texts",
          [](const LoadedModel& l, const std::vector<std::string>& texts, int batch_size, bool normalize,
             const py::object& progress) {
            const Progress report = progress_of(progress);
            py::gil_scoped_release release;
            return maybe_normalized(embed_texts(*l.model, l.tokenizer, texts, batch_size, l.threads, report),
                                    normalize);
          },
          py::arg("texts"), py::arg("batch_size") = 256, py::arg("normalize") = false,
          py::arg("progress") = py::none())
      .def(
          "zero_shot_weights",
          [](const LoadedModel& l, const Tokenizer& tokenizer, const std::vector<std::string>& prompts,
             int64_t classes) {
            if (classes <= 0 || prompts.empty() || prompts.size() % classes != 0)
              throw Error("zero-shot classifier: " + std::to_string(prompts.size()) + " prompts for " +
                          std::to_string(classes) + " classes, expected the same number of templates for each class");
            py::gil_scoped_release release;
            const int64_t templates = static_cast<int64_t>(prompts.size()) / classes;
            const at::Tensor emb = normalize_rows(embed_texts(*l.model, tokenizer, prompts, 256, l.threads, {}));
            return normalize_rows(emb.view({classes, templates, -1}).mean(1)).t().contiguous();
          },
          py::arg("tokenizer"), py::arg("prompts"), py::arg("classes"),
          "[embed_dim, classes]: per class the mean of its prompts' normalized features, renormalized "
          "(prompts class-major)");
}

}  // namespace clip::python
