// Memory for streamed data (util/huge_pages.h): blocks of every size class are aligned, whole and
// writable, and are given back with their last owner. (Whether the system backs them with huge pages
// is its choice, so it is not asserted; bench_model's figures show the effect.)
#include "util/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

namespace {

TEST(AllocateForStreaming, BlocksAreAlignedAndWritableWhole) {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{4096}, (size_t{512} << 10) - 64, size_t{512} << 10, size_t{1} << 20,
                       (size_t{3} << 20) + 12345, size_t{4} << 20}) {
    const std::shared_ptr<void> block = clip::util::allocate_for_streaming(bytes);
    ASSERT_NE(block.get(), nullptr) << bytes;
    const auto address = reinterpret_cast<uintptr_t>(block.get());
    EXPECT_EQ(address % 64, 0u) << bytes;
    if (bytes >= (size_t{512} << 10)) {
      EXPECT_EQ(address % (size_t{2} << 20), 0u) << bytes;  // a huge-page boundary
    }
    unsigned char* p = static_cast<unsigned char*>(block.get());
    std::memset(p, 0xA5, bytes);
    if (bytes > 0) {
      EXPECT_EQ(p[bytes - 1], 0xA5) << bytes;
    }
  }
}

// The process's mapped memory, in KiB (VmSize).
long mapped_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stol(line.substr(7));
  return -1;
}

TEST(AllocateForStreaming, FreedBlocksAreReturned) {
  const long before = mapped_kib();
  ASSERT_GT(before, 0);
  for (int round = 0; round < 64; ++round) {
    auto a = clip::util::allocate_for_streaming(size_t{12} << 20),
         b = clip::util::allocate_for_streaming(size_t{12} << 20);
    ASSERT_NE(a.get(), b.get());
    static_cast<char*>(a.get())[0] = 1;
    static_cast<char*>(b.get())[(size_t{12} << 20) - 1] = 1;
  }
  // 64 rounds of 24 MiB: 1.5 GiB if the blocks leaked. Freed ones are reused or unmapped; under
  // AddressSanitizer up to 256 MiB of freed memory waits in its quarantine first.
  EXPECT_LT(mapped_kib() - before, 512 * 1024);
}

}  // namespace
