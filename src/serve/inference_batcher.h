// Gathers the model calls of concurrent requests into one batch (`clip serve --batch-window-ms`,
// docs/serve.md): calls that arrive while a batch runs queue up and form the next batch as soon as
// it ends; one batch per kind (texts, images) runs at a time. A call that finds the model idle
// runs at once (window 0), or first waits up to the window for others (window > 0). With a
// negative window there is no gathering: every call runs at once on its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include <torch/torch.h>

namespace clip::serve {

class InferenceBatcher {
 public:
  enum class Kind { kText, kImage };
  using Encode = std::function<torch::Tensor(const torch::Tensor&)>;

  // A batch holds at most max_text_rows texts or max_image_rows images (a call with more runs alone).
  InferenceBatcher(std::chrono::microseconds window, int64_t max_text_rows, int64_t max_image_rows);

  // encode(input) for `input`'s rows ([n, ...], the same trailing shape for every call of a kind),
  // computed in a batch with other calls' rows; returns this call's n rows. `encode` must be the
  // same function for every call of a kind (the model's encoder). Errors reach every call of the batch.
  torch::Tensor run(Kind kind, const torch::Tensor& input, const Encode& encode) const;

 private:
  struct Call;
  struct Queue {
    std::vector<Call*> waiting;
    int64_t rows = 0;
    bool busy = false;  // a batch of this kind is being gathered or computed
    int64_t max_rows = 1;
  };
  std::chrono::microseconds window_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable Queue queues_[2];
};

}  // namespace clip::serve
