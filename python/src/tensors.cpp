#include "tensors.h"

#include <cstdint>
#include <utility>

#include "bindings.h"
#include "clip/error.h"

namespace clip::python {

at::Tensor for_python(const at::Tensor& t) {
  if (!t.defined() || !t.is_inference()) return t;
  at::Tensor plain = at::empty({0}, t.options());
  plain.set_(t.storage(), t.storage_offset(), t.sizes(), t.strides());
  return plain;
}

at::Tensor image_input(const at::Tensor& images, const std::string& what) {
  if (images.scalar_type() != at::kFloat)
    throw Error(what + ": dtype " + std::string(c10::toString(images.scalar_type())) +
                ", expected float32 (torch.float32 / numpy.float32)");
  return images;
}

at::Tensor token_input(const at::Tensor& tokens, const std::string& what) {
  if (tokens.scalar_type() != at::kLong && tokens.scalar_type() != at::kInt)
    throw Error(what + ": dtype " + std::string(c10::toString(tokens.scalar_type())) +
                ", expected int64 or int32 token ids");
  if (tokens.dim() != 2)
    throw Error(what + ": expected token ids of shape [N, L], found " + c10::str(tokens.sizes()));
  return tokens.scalar_type() == at::kLong ? tokens : tokens.to(at::kLong);
}

// Probes for the zero-copy tests (python/tests/test_zero_copy.py): where C++ sees a tensor's
// data, and a tensor C++ fills together with the address it wrote to.
void bind_tensors(py::module_& m) {
  m.def(
      "_data_address", [](const at::Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.data_ptr()); },
      "The address of a tensor's data as C++ receives it (a test probe)");
  m.def(
      "_filled_in_cpp",
      [](int64_t n) {
        at::Tensor t;
        {
          c10::InferenceMode inference;  // made as the model makes its results
          t = at::empty({n}, at::kFloat);
          float* p = t.data_ptr<float>();
          for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i);
        }
        const auto address = reinterpret_cast<std::uintptr_t>(t.data_ptr());
        return py::make_tuple(for_python(t), address);
      },
      py::arg("n"), "A float tensor 0..n-1 written in C++ and the address written to (a test probe)");
}

}  // namespace clip::python
