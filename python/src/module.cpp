// clip_cpp._core: the compiled half of the Python package clip_cpp (python/clip_cpp/__init__.py
// gives open_clip's names on top of it). docs/python.md.
#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "CLIP++ from Python: the compiled core of clip_cpp (use the package clip_cpp)";
  clip::python::bind_errors(m);
  clip::python::bind_tensors(m);
  clip::python::bind_tokenizer(m);
  clip::python::bind_images(m);
  clip::python::bind_model(m);
  clip::python::bind_hub(m);
}
