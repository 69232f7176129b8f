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
  const size_t size = round_up(bytes, kHugePage);
  // Map one huge page more than needed, then unmap the parts before the first 2 MiB boundary and
  // after the block.
  void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw), aligned = round_up(start, kHugePage);
  if (aligned > start) ::munmap(raw, aligned - start);
  if (const size_t tail = start + size + kHugePage - (aligned + size); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  void* block = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  ::madvise(block, size, MADV_HUGEPAGE);  // advice only: without huge pages the block still works
#endif
  return std::shared_ptr<void>(block, [size](void* q) { ::munmap(q, size); });
}

}  // namespace clip::util
