// Buffer (buffer.hpp): tensors' storage on large pages where Linux grants
// them, and on a cache line otherwise.
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "buffer.hpp"
#include "check.hpp"
#include "tensor.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

using namespace lcnn;

namespace {

#if defined(__linux__) && defined(MADV_HUGEPAGE)
bool on_large_page_boundary(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % kLargePageBytes == 0;
}

// What /proc/self/smaps says after `field` for the mapping of this
// process that holds `p`, or "" where none holds it or the kernel does not
// list the field.
std::string mapping_field(const void* p, const std::string& field) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> start >> dash >> end && dash == '-') {
      inside = start <= address && address < end;
    } else if (inside && line.rfind(field, 0) == 0) {
      return line.substr(field.size());
    }
  }
  return "";
}

// The mapping's flags ("rd wr mr mw me ac sd hg": "hg" is MADV_HUGEPAGE),
// each with a space either side.
std::string mapping_flags(const void* p) {
  const std::string flags = mapping_field(p, "VmFlags:");
  return flags.empty() ? flags : flags + " ";
}

bool kernel_has_huge_pages() {
  return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
}
#endif

}  // namespace

TEST(buffer_keeps_values_across_the_large_page_threshold) {
  const std::size_t large = kLargePageBytes / sizeof(float) + 3;
  Buffer<float> values(100);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  values.resize(large, -1.0f);
  bool kept = true;
  for (std::size_t i = 0; i < 100; ++i) kept = kept && values[i] == static_cast<float>(i);
  CHECK(kept);
  CHECK_EQ(values[large - 1], -1.0f);
  values.resize(10);
  values.shrink_to_fit();
  CHECK_EQ(values.size(), std::size_t(10));
  CHECK_EQ(values[9], 9.0f);
  const Buffer<float> copy = values;
  CHECK(copy == values);
}

// Smaller tensors, of sizes glibc serves from its heap and from mappings of
// their own, start on a cache line: a column of 64 floats is then four
// whole lines.
TEST(buffer_of_a_small_tensor_starts_on_a_line) {
  for (index_t values : {1, 3, 1000, 173056, 400000}) {
    Tensor<float> small;
    small.resize(Shape{{values}});
    CHECK_MSG(reinterpret_cast<std::uintptr_t>(small.data.data()) % kLineBytes == 0,
              values << " values at " << static_cast<const void*>(small.data.data()));
    Buffer<double> grown(static_cast<std::size_t>(values));
    grown.resize(grown.size() + 5);
    CHECK_MSG(reinterpret_cast<std::uintptr_t>(grown.data()) % kLineBytes == 0,
              values + 5 << " doubles at " << static_cast<const void*>(grown.data()));
  }
}

// Elsewhere large buffers come from operator new on a line too, with no
// large page to check.
#if defined(__linux__) && defined(MADV_HUGEPAGE)
TEST(buffer_of_a_large_tensor_starts_on_a_large_page) {
  Tensor<float> large;
  large.resize(Shape{{64, 30, 30, 64}});  // W1's output, 14.7 MB
  CHECK(on_large_page_boundary(large.data.data()));
  if (kernel_has_huge_pages()) {
    CHECK_MSG(mapping_flags(large.data.data()).find(" hg ") != std::string::npos,
              "flags " << mapping_flags(large.data.data()));
    // The last partial large page is not advised: it would be resident whole.
    const std::size_t bytes = large.data.size() * sizeof(float);
    const char* tail = reinterpret_cast<const char*>(large.data.data()) +
                       bytes / kLargePageBytes * kLargePageBytes;
    CHECK_MSG(mapping_flags(tail).find(" hg ") == std::string::npos,
              "flags " << mapping_flags(tail));
  }
}
#endif

// predict()'s results (rcpp_result_memory.cpp): a mapping of the block's
// own, on a large page, advised for huge pages over its whole large pages,
// writable to its last byte and gone once unmapped.
#if defined(__linux__) && defined(MADV_HUGEPAGE)
TEST(a_mapped_block_starts_on_a_large_page_and_goes_back_whole) {
  CHECK(maps_blocks());
  const std::size_t bytes = 3 * kLargePageBytes + 100;
  auto* block = static_cast<unsigned char*>(map_block(bytes, PageSize::large));
  CHECK(block != nullptr);
  if (block == nullptr) return;
  CHECK(on_large_page_boundary(block));
  for (std::size_t i = 0; i < bytes; i += 4096) block[i] = 1;
  block[bytes - 1] = 2;
  CHECK_EQ(int(block[bytes - 1]) + int(block[0]), 3);
  if (kernel_has_huge_pages()) {
    CHECK_MSG(mapping_flags(block).find(" hg ") != std::string::npos,
              "flags " << mapping_flags(block));
    CHECK_MSG(mapping_flags(block + bytes - 1).find(" hg ") == std::string::npos,
              "flags " << mapping_flags(block + bytes - 1));
  }
  unmap_block(block, bytes);
  CHECK_EQ(mapping_flags(block), std::string());
  CHECK_EQ(mapping_flags(block + bytes - 1), std::string());
}
#endif

// A pooled result's block (rcpp_result_memory.cpp): its pages lazily
// freed, for the kernel to take back only when it runs short of memory,
// and the block still mapped and writable for the next result.
#if defined(__linux__) && defined(MADV_HUGEPAGE)
TEST(a_block_freed_lazily_stays_mapped_and_its_pages_are_lazily_free) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t bytes = 2 * kLargePageBytes + 2 * page;
  CHECK_EQ(whole_pages(bytes), bytes);
  CHECK_EQ(whole_pages(bytes - 1), bytes);
  CHECK_EQ(whole_pages(bytes + 1), bytes + page);
  auto* block = static_cast<unsigned char*>(map_block(bytes, PageSize::large));
  CHECK(block != nullptr);
  if (block == nullptr) return;
  for (std::size_t i = 0; i < bytes; i += page) block[i] = 1;
  free_pages_lazily(block, bytes);
  // The mapping of the large pages, apart from the tail's since
  // map_block()'s advice, where the kernel granted huge pages: it lists
  // small pages as lazily free only once a per-CPU batch of them is full.
  const std::string huge_kib = mapping_field(block, "AnonHugePages:");
  const std::string lazy_kib = mapping_field(block, "LazyFree:");
  if (!lazy_kib.empty() && !huge_kib.empty() &&
      std::stoul(huge_kib) * 1024 >= 2 * kLargePageBytes) {
    CHECK_MSG(std::stoul(lazy_kib) * 1024 >= 2 * kLargePageBytes, "LazyFree:" << lazy_kib);
  }
  for (std::size_t i = 0; i < bytes; i += page) block[i] = 2;
  block[bytes - 1] = 3;
  CHECK_EQ(int(block[bytes - 1]) + int(block[0]), 5);
  unmap_block(block, bytes);
  CHECK_EQ(mapping_flags(block), std::string());
}
#endif

// The trainer's blocks (rcpp_result_memory.cpp): a mapping of the block's
// own on base pages, with no advice for huge pages, whole pages long.
#if defined(__linux__) && defined(MADV_HUGEPAGE)
TEST(a_block_on_base_pages_asks_for_no_huge_pages) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t bytes = 2 * kLargePageBytes + 100;
  auto* block = static_cast<unsigned char*>(map_block(bytes, PageSize::base));
  CHECK(block != nullptr);
  if (block == nullptr) return;
  CHECK_EQ(reinterpret_cast<std::uintptr_t>(block) % page, std::uintptr_t(0));
  block[0] = 1;
  block[whole_pages(bytes) - 1] = 2;
  CHECK_EQ(int(block[whole_pages(bytes) - 1]) + int(block[0]), 3);
  CHECK(!mapping_flags(block).empty());
  CHECK_MSG(mapping_flags(block).find(" hg ") == std::string::npos,
            "flags " << mapping_flags(block));
  unmap_block(block, bytes);
  CHECK_EQ(mapping_flags(block), std::string());
}
#endif

namespace {

// A BlockMemory that records what it hands out and takes back.
struct BlockLog {
  std::size_t taken = 0, given_back = 0;
  void* last_block = nullptr;
  std::size_t last_bytes = 0;
};
BlockLog first_log, second_log;

template <BlockLog& log>
void* take_logged(std::size_t bytes) {
  log.taken += 1;
  log.last_bytes = bytes;
  return log.last_block = ::operator new(bytes);
}
template <BlockLog& log>
void give_back_logged(void* block, std::size_t bytes) noexcept {
  log.given_back += 1;
  CHECK(block == log.last_block);
  CHECK_EQ(bytes, log.last_bytes);
  ::operator delete(block);
}

}  // namespace

// A BlockArray takes its block from the memory installed when it is made,
// of n values' bytes, and gives it back there once, whichever memory is
// installed by then and wherever it has been moved.
TEST(a_block_array_gives_its_block_back_where_it_came_from) {
  const BlockMemory before =
      use_block_memory({take_logged<first_log>, give_back_logged<first_log>});
  {
    BlockArray<double> empty(0);
    CHECK(empty.data() == nullptr);
    CHECK_EQ(first_log.taken, std::size_t(0));
    BlockArray<float> values(1000);
    CHECK_EQ(first_log.taken, std::size_t(1));
    CHECK_EQ(first_log.last_bytes, 1000 * sizeof(float));
    CHECK(values.data() == first_log.last_block);
    CHECK_EQ(values.size(), std::size_t(1000));
    values.data()[999] = 1.5f;
    use_block_memory({take_logged<second_log>, give_back_logged<second_log>});
    BlockArray<float> moved(std::move(values));
    CHECK(values.data() == nullptr);
    CHECK_EQ(moved.data()[999], 1.5f);
    BlockArray<float> assigned;
    assigned = std::move(moved);
    CHECK_EQ(assigned.size(), std::size_t(1000));
    CHECK_EQ(first_log.given_back, std::size_t(0));
  }
  CHECK_EQ(first_log.given_back, std::size_t(1));
  CHECK_EQ(second_log.taken, std::size_t(0));
  CHECK_EQ(second_log.given_back, std::size_t(0));
  use_block_memory(before);
}
