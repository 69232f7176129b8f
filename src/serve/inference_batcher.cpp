#include "serve/inference_batcher.h"

#include <exception>

namespace clip::serve {

struct InferenceBatcher::Call {
  torch::Tensor input, output;
  std::exception_ptr error;
  bool done = false;
};

InferenceBatcher::InferenceBatcher(std::chrono::microseconds window, int64_t max_text_rows, int64_t max_image_rows)
    : window_(window) {
  queues_[static_cast<int>(Kind::kText)].max_rows = std::max<int64_t>(1, max_text_rows);
  queues_[static_cast<int>(Kind::kImage)].max_rows = std::max<int64_t>(1, max_image_rows);
}

torch::Tensor InferenceBatcher::run(Kind kind, const torch::Tensor& input, const Encode& encode) const {
  if (window_.count() < 0) return encode(input);
  Call call;
  call.input = input;
  std::unique_lock<std::mutex> lock(mutex_);
  Queue& q = queues_[static_cast<int>(kind)];
  q.waiting.push_back(&call);
  q.rows += input.size(0);
  if (q.rows >= q.max_rows) changed_.notify_all();  // a leader gathering may stop early
  while (!call.done) {
    if (q.busy) {
      changed_.wait(lock);
      continue;
    }
    // This call leads the next batch: alone after an idle spell, it may wait for company first.
    q.busy = true;
    if (q.waiting.size() == 1 && window_.count() > 0)
      changed_.wait_for(lock, window_, [&] { return q.rows >= q.max_rows; });
    std::vector<Call*> batch;
    int64_t rows = 0;
    while (!q.waiting.empty() && (batch.empty() || rows + q.waiting.front()->input.size(0) <= q.max_rows)) {
      rows += q.waiting.front()->input.size(0);
      batch.push_back(q.waiting.front());
      q.waiting.erase(q.waiting.begin());
    }
    q.rows -= rows;
    lock.unlock();
    try {
      std::vector<torch::Tensor> inputs;
      for (const Call* c : batch) inputs.push_back(c->input);
      const torch::Tensor out = encode(inputs.size() == 1 ? inputs[0] : torch::cat(inputs, 0));
      int64_t offset = 0;
      for (Call* c : batch) {
        c->output = out.narrow(0, offset, c->input.size(0));
        offset += c->input.size(0);
      }
    } catch (...) {
      for (Call* c : batch) c->error = std::current_exception();
    }
    lock.lock();
    for (Call* c : batch) c->done = true;
    q.busy = false;
    changed_.notify_all();
  }
  if (call.error) std::rethrow_exception(call.error);
  return call.output;
}

}  // namespace clip::serve
