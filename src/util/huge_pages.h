// Memory for large, long-lived data that is read by streaming it from DRAM (packed weights).
//
// Why: at batch 1 a text encoding reads every weight once and does little else, so its speed is
// the speed of a streaming read. The hardware prefetchers stop at page boundaries, so a read
// through 4 KiB pages stalls every 4 KiB; on 2 MiB pages it does not. Measured here (2 threads,
// 80 MB read): 25-28 GB/s on 4 KiB pages, 33-41 GB/s on transparent huge pages.
//
// The block is mapped at a 2 MiB boundary and advised for transparent huge pages (Linux
// MADV_HUGEPAGE: the default "madvise" mode serves only advised ranges). A block of 512 KiB or
// more is rounded up to whole huge pages, so all of it streams from huge pages; the slack is at
// most 1.5 MiB per block (a text layer's 0.5 MiB bf16 out_proj takes one page, and read 17 GB/s
// on small pages against 25+ on a huge one). A smaller block stays on ordinary pages.
// Where huge pages are off, the memory is ordinary memory; nothing else changes.
#pragma once

#include <cstddef>
#include <memory>

namespace clip::util {

// At least `bytes` bytes (64-byte aligned, uninitialized), freed when the last owner goes.
// Throws std::bad_alloc when the system has no memory to give.
std::shared_ptr<void> allocate_for_streaming(size_t bytes);

}  // namespace clip::util
