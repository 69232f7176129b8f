// OneBlasThread: OpenBLAS runs on one thread while FAISS works, and gets its thread count back
// after the last guard ends (nested and concurrent guards).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <thread>

#include "index/blas_threads.h"

namespace clip {
namespace {

using GetThreads = int (*)();
using SetThreads = void (*)(int);

struct OpenBlas {
  GetThreads get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  SetThreads set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
};

TEST(OneBlasThread, OpenBlasRunsOnOneThreadWhileAGuardLivesAndGetsItsCountBack) {
  const OpenBlas blas;
  if (!blas.get || !blas.set) GTEST_SKIP() << "the BLAS this process loaded is not OpenBLAS: nothing to limit";
  const int before = blas.get();
  blas.set(3);
  {
    const index::OneBlasThread outer;
    EXPECT_EQ(blas.get(), 1);
    {
      const index::OneBlasThread inner;
      EXPECT_EQ(blas.get(), 1);
    }
    EXPECT_EQ(blas.get(), 1) << "the inner guard must not restore while the outer one lives";
    // A guard on another thread, ending first, leaves the outer one's setting alone.
    std::thread([&] {
      const index::OneBlasThread other;
      EXPECT_EQ(blas.get(), 1);
    }).join();
    EXPECT_EQ(blas.get(), 1);
  }
  EXPECT_EQ(blas.get(), 3);
  blas.set(before);
}

}  // namespace
}  // namespace clip
