// InferenceBatcher: concurrent calls gathered into one forward pass, each given back its own rows,
// errors reaching every call of the batch. The batch size bound, not the window's timing, closes
// a batch (the window is far longer than the test); without a window, the first batch holds the
// model until the others have had 200 ms to queue.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "serve/inference_batcher.h"

using clip::serve::InferenceBatcher;

namespace {

constexpr auto kLongWindow = std::chrono::seconds(60);

}  // namespace

TEST(InferenceBatcher, ConcurrentCallsShareOneBatchAndGetTheirOwnRows) {
  const InferenceBatcher batcher(kLongWindow, /*max_text_rows=*/6, /*max_image_rows=*/1);
  std::atomic<int> calls{0};
  std::atomic<int64_t> rows_seen{0};
  const InferenceBatcher::Encode encode = [&](const torch::Tensor& x) {
    ++calls;
    rows_seen += x.size(0);
    return x * 2;
  };
  // Three callers with 1, 2 and 3 rows: 6 rows close the batch.
  std::vector<torch::Tensor> inputs = {torch::full({1, 4}, 1.0), torch::full({2, 4}, 2.0), torch::full({3, 4}, 3.0)};
  std::vector<torch::Tensor> outputs(inputs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i)
    threads.emplace_back(
        [&, i] { outputs[i] = batcher.run(InferenceBatcher::Kind::kText, inputs[i], encode); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(rows_seen.load(), 6);
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_TRUE(torch::equal(outputs[i], inputs[i] * 2)) << i;
}

TEST(InferenceBatcher, AnErrorReachesEveryCallOfTheBatch) {
  const InferenceBatcher batcher(kLongWindow, 2, 1);
  const InferenceBatcher::Encode encode = [](const torch::Tensor&) -> torch::Tensor {
    throw std::runtime_error("model failed");
  };
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&] {
      try {
        batcher.run(InferenceBatcher::Kind::kText, torch::ones({1, 3}), encode);
      } catch (const std::runtime_error&) {
        ++errors;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 2);
}

TEST(InferenceBatcher, GatheringOffEachCallRunsAlone) {
  const InferenceBatcher batcher(std::chrono::microseconds(-1), 256, 32);
  int calls = 0;
  const InferenceBatcher::Encode encode = [&](const torch::Tensor& x) {
    ++calls;
    return x + 1;
  };
  EXPECT_TRUE(torch::equal(batcher.run(InferenceBatcher::Kind::kImage, torch::zeros({2, 2}), encode),
                           torch::ones({2, 2})));
  batcher.run(InferenceBatcher::Kind::kImage, torch::zeros({1, 2}), encode);
  EXPECT_EQ(calls, 2);
}

// Window 0 (the server's default): a lone call runs at once (with a window it would wait for
// company), and the calls that arrive while a batch computes form the next batch together.
TEST(InferenceBatcher, WithoutAWindowCallsQueuedDuringABatchFormTheNext) {
  const InferenceBatcher batcher(std::chrono::microseconds(0), 256, 32);
  std::atomic<bool> lead_computing{false};
  std::atomic<int> started{0};
  std::vector<int64_t> batch_rows;  // written by one batch at a time (the batcher serializes them)
  const InferenceBatcher::Encode encode = [&](const torch::Tensor& x) {
    if (!lead_computing.exchange(true)) {
      // The first batch holds the model until the three other callers are on their way in.
      while (started.load() < 3) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    batch_rows.push_back(x.size(0));
    return x * 5;
  };
  torch::Tensor first;
  std::thread lead([&] { first = batcher.run(InferenceBatcher::Kind::kText, torch::ones({1, 3}), encode); });
  while (!lead_computing.load()) std::this_thread::yield();  // the lone lead call runs without waiting
  std::vector<torch::Tensor> outputs(3);
  std::vector<std::thread> others;
  for (int i = 0; i < 3; ++i)
    others.emplace_back([&, i] {
      ++started;
      outputs[i] = batcher.run(InferenceBatcher::Kind::kText, torch::full({i + 1, 3}, double(i + 1)), encode);
    });
  lead.join();
  for (auto& t : others) t.join();
  ASSERT_EQ(batch_rows.size(), 2u);
  EXPECT_EQ(batch_rows[0], 1);
  EXPECT_EQ(batch_rows[1], 6);
  EXPECT_TRUE(torch::equal(first, torch::full({1, 3}, 5.0)));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(outputs[i], torch::full({i + 1, 3}, 5.0 * (i + 1)))) << i;
}

TEST(InferenceBatcher, ACallOverTheBoundRunsAloneAtOnce) {
  // One caller with more rows than a batch holds: it does not wait for company it cannot take.
  const InferenceBatcher batcher(kLongWindow, 2, 1);
  const torch::Tensor out = batcher.run(InferenceBatcher::Kind::kText, torch::ones({5, 3}),
                                        [](const torch::Tensor& x) { return x * 3; });
  EXPECT_TRUE(torch::equal(out, torch::full({5, 3}, 3.0)));
}
