// FAISS parallelises with OpenMP and calls BLAS between and inside its parallel loops. Debian's
// default BLAS (libopenblas0-pthread) keeps a pool of its own threads that busy-wait between calls,
// so on a machine with as many OpenMP threads as cores the two pools take turns spinning: measured
// on 2 cores, an IVF-PQ import of 100k rows took 52.9 s with 24 s in the kernel (sched_yield),
// against 20.3 s with OpenBLAS at one thread (docs/search.md, "Benchmarks"). FAISS's own advice is
// OpenBLAS's OpenMP build; this does the same for the duration of the FAISS work on any build.
#pragma once

namespace clip::index {

// While at least one of these lives, OpenBLAS (when it is the BLAS loaded, found by name at run
// time) runs on the calling thread only; the last one to end restores its previous thread count.
// OpenBLAS's thread count is a process-wide setting, so the guards count themselves under a lock
// (nested and concurrent guards are fine); other BLAS libraries are left alone.
class OneBlasThread {
 public:
  OneBlasThread();
  ~OneBlasThread();
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;
};

}  // namespace clip::index
