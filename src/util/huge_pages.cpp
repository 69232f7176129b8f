#include "util/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace clip::util {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kRoundUpFrom = size_t{512} << 10;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::shared_ptr<void> allocate_for_streaming(size_t bytes) {
  if (bytes < kRoundUpFrom) {
    void* p = std::aligned_alloc(64, round_up(bytes == 0 ? 1 : bytes, 64));
    if (!p) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  }
  // From the C heap, so that memory freed by one model serves the next (with the allocator told
  // to keep freed memory, as the clip command does, a separate mapping would be returned to the
  // system while the heap kept its own freed blocks, and a second model would need both).
  const size_t size = round_up(bytes, kHugePage);
  void* block = std::aligned_alloc(kHugePage, size);
  if (!block) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  // Advice only: without huge pages the block still works. A reused heap block already has small
  // pages, which would stay (e.g. bf16 packs taking the place of the fp32 ones they replace), so
  // they are dropped first: the block is about to be overwritten, and its next touch faults in
  // huge pages.
  ::madvise(block, size, MADV_HUGEPAGE);
  ::madvise(block, size, MADV_DONTNEED);
#endif
  return std::shared_ptr<void>(block, [](void* q) { std::free(q); });
}

}  // namespace clip::util
