#include "index/blas_threads.h"

#include <dlfcn.h>

#include <mutex>

namespace clip::index {
namespace {

using GetThreads = int (*)();
using SetThreads = void (*)(int);

// The process-wide state the guards share: OpenBLAS's setting is process-wide too.
struct BlasThreadState {
  std::mutex mutex;
  int guards = 0;
  int saved = 0;
  GetThreads get = nullptr;
  SetThreads set = nullptr;

  BlasThreadState() {
    get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (!get || !set) get = nullptr, set = nullptr;
  }
};

BlasThreadState& state() {
  static BlasThreadState s;
  return s;
}

}  // namespace

OneBlasThread::OneBlasThread() {
  BlasThreadState& s = state();
  if (!s.set) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.guards++ == 0) {
    s.saved = s.get();
    if (s.saved > 1) s.set(1);
  }
}

OneBlasThread::~OneBlasThread() {
  BlasThreadState& s = state();
  if (!s.set) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (--s.guards == 0 && s.saved > 1) s.set(s.saved);
}

}  // namespace clip::index
