#include "util/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <future>
#include <memory>

namespace clip::util {

int default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = default_thread_count();
  // The calling thread also works in parallel_for, so it counts as one of `threads`.
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { run_worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_worker() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop();
    }
    task();
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const size_t chunk = std::max<size_t>(1, n / (static_cast<size_t>(size() + 1) * 8));
  auto drain = [&] {
    for (;;) {
      const size_t begin = next.fetch_add(chunk);
      if (begin >= n || failed.load()) return;
      const size_t end = std::min(n, begin + chunk);
      try {
        for (size_t i = begin; i < end; ++i) fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  std::vector<std::future<void>> done;
  const size_t helpers = std::min<size_t>(workers_.size(), (n + chunk - 1) / chunk - 1);
  for (size_t i = 0; i < helpers; ++i) {
    auto task = std::make_shared<std::packaged_task<void()>>(drain);
    done.push_back(task->get_future());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push([task] { (*task)(); });
    }
    wake_.notify_one();
  }
  drain();
  for (auto& f : done) f.wait();
  if (error) std::rethrow_exception(error);
}

}  // namespace clip::util
