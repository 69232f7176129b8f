// clip::Error → the Python exception of its kind, with CLIP++'s message (docs/python.md):
//   invalid input → ValueError; too large → clip_cpp.TooLargeError (a ValueError);
//   unsupported → clip_cpp.UnsupportedError (a ValueError); not found → FileNotFoundError;
//   I/O → OSError; internal → RuntimeError. libtorch's own errors (c10::Error) are RuntimeError.
#include "clip/error.h"

#include "bindings.h"

namespace clip::python {

void bind_errors(py::module_& m) {
  // Module attributes own the new types; the translator reads them back from the module.
  static py::exception<Error> too_large(m, "TooLargeError", PyExc_ValueError);
  static py::exception<Error> unsupported(m, "UnsupportedError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind()) {
        case ErrorKind::kInvalidInput: type = PyExc_ValueError; break;
        case ErrorKind::kTooLarge: type = too_large.ptr(); break;
        case ErrorKind::kUnsupported: type = unsupported.ptr(); break;
        case ErrorKind::kNotFound: type = PyExc_FileNotFoundError; break;
        case ErrorKind::kIo: type = PyExc_OSError; break;
        case ErrorKind::kInternal: type = PyExc_RuntimeError; break;
      }
      PyErr_SetString(type, e.what());
    }
  });
}

}  // namespace clip::python
