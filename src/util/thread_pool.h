// A small fixed-size thread pool with an ordered parallel-for; no global state.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace clip::util {

// Number of threads to use when the user gave none (or 0): all cores.
int default_thread_count();

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: default_thread_count()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()); }

  // Runs fn(i) for i in [0, n) across the pool (and the calling thread) and waits. Indices are
  // handed out in chunks; the first exception thrown is rethrown here after all work stops.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

 private:
  void run_worker();
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::queue<std::function<void()>> tasks_;
  bool stopping_ = false;
};

}  // namespace clip::util
