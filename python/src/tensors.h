// Tensors crossing between Python and C++ without copies. Arguments arrive through PyTorch's
// own caster (torch/extension.h: THPVariable_Unpack, the same TensorImpl Python holds) and
// results leave through THPVariable_Wrap, so a returned torch.Tensor is the memory C++ wrote.
#pragma once

#include <torch/extension.h>

#include <string>

namespace clip::python {

// A result for Python: `t` itself, or, when C++ made it under InferenceMode (the model does), a
// plain tensor over the same storage. Python could not use an inference tensor as it uses any
// other (`features /= features.norm(...)` outside inference mode raises), and a copy would cost.
at::Tensor for_python(const at::Tensor& t);

// Checked inputs: float32 [N, 3, R, R] images (the model checks the shape), integer [N, L] token
// ids as int64. `what` names the argument in messages (clip::Error, kind invalid input).
at::Tensor image_input(const at::Tensor& images, const std::string& what);
at::Tensor token_input(const at::Tensor& tokens, const std::string& what);

}  // namespace clip::python
