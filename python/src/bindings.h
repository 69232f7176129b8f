// The parts of the extension clip_cpp._core, each registered by its own file (module.cpp calls
// them in order: errors first, so every later function's clip::Error becomes a Python exception).
#pragma once

#include <torch/extension.h>

namespace clip::python {

namespace py = pybind11;

void bind_errors(py::module_& m);     // errors.cpp
void bind_tensors(py::module_& m);    // tensors.cpp: the zero-copy probes the tests use
void bind_tokenizer(py::module_& m);  // tokenizer_binding.cpp
void bind_images(py::module_& m);     // image_binding.cpp
void bind_model(py::module_& m);      // model_binding.cpp
void bind_hub(py::module_& m);        // hub_binding.cpp

}  // namespace clip::python
