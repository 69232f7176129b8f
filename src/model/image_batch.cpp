#include "model/image_batch.h"

#include <cstring>
#include <string>

#include "clip/error.h"

namespace clip::model {

torch::Tensor stack_image_inputs(const std::vector<const std::vector<float>*>& inputs, int64_t size) {
  const size_t per_image = static_cast<size_t>(3 * size * size);
  torch::Tensor batch = torch::empty({static_cast<int64_t>(inputs.size()), 3, size, size});
  float* out = batch.data_ptr<float>();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]->size() != per_image)
      throw Error("image " + std::to_string(i) + " of a batch holds " + std::to_string(inputs[i]->size()) +
                      " values; expected 3 × " + std::to_string(size) + " × " + std::to_string(size),
                  ErrorKind::kInternal);
    std::memcpy(out + i * per_image, inputs[i]->data(), sizeof(float) * per_image);
  }
  return batch;
}

}  // namespace clip::model
