// The storage of the engine's tensors: a std::vector whose allocations of
// at least one large page (2 MiB), on Linux, start on a large-page boundary
// and ask the kernel for transparent huge pages (MADV_HUGEPAGE), which
// it grants where it is set to do so on request (`madvise`, Debian's
// default) or always. A locally connected layer writes each position's
// outputs as one run per filter, a whole feature map apart, and reads its
// gradient the same way: on 4 KiB pages its passes touch a page per filter
// and position, more than the TLB holds; on 2 MiB pages the TLB covers the
// tensors (bench/NOTES.md: the training steps of W1-W4 and W6 2-9% faster,
// the forward passes of W2 and W3 5-9%). Smaller allocations, and all of
// them on other systems, come from operator new on a cache line
// (kLineBytes).
#pragma once

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace lcnn {

constexpr std::size_t kLargePageBytes = std::size_t(2) << 20;
// Where a smaller buffer starts. glibc's plain operator new returns memory
// 16 bytes past a line (after its chunk header), and every 64-byte vector
// of a column of 64 samples then spans two lines: W7's first layer's
// forward pass ran 20-35% slower so (bench/NOTES.md).
constexpr std::size_t kLineBytes = 64;

// `bytes` bytes for a buffer of at least kLargePageBytes: on Linux
// starting on a large-page boundary, with huge pages asked for its whole
// large pages; elsewhere from operator new on a line. Released by
// release_large(). Throws std::bad_alloc.
void* allocate_large(std::size_t bytes);
void release_large(void* p);

// The pages a mapped block asks for: the system's base pages, or huge
// pages over its whole large pages.
enum class PageSize { base, large };

// `bytes` bytes mapped from the kernel for this block alone, on Linux; with
// PageSize::large starting on a large-page boundary with huge pages asked
// for its whole large pages. Given back to the kernel by unmap_block() at
// once: no allocator's heap in between, which would trim itself and fault
// the pages in again for the next block of the same size (`predict()`'s
// results, bench/NOTES.md). The block is whole_pages(bytes) long. Only
// where maps_blocks(); nullptr when the system has no memory for it.
bool maps_blocks();
std::size_t whole_pages(std::size_t bytes);
void* map_block(std::size_t bytes, PageSize pages);
void unmap_block(void* p, std::size_t bytes);
// Tells the kernel that the contents of a mapped block are no longer
// needed (MADV_FREE): it takes the pages back only when it runs short of
// memory, and until then writing to the block again faults nothing in and
// clears nothing, where a fresh mapping's pages are cleared on first touch.
void free_pages_lazily(void* p, std::size_t bytes);

// Where the blocks of BlockArray come from and go back to. By default
// operator new and delete; the R package installs its pool of
// `predict()`'s results (rcpp_result_memory.cpp), which keeps a block
// given back for the next one of its size. `take` throws std::bad_alloc.
struct BlockMemory {
  void* (*take)(std::size_t bytes);
  void (*give_back)(void* block, std::size_t bytes) noexcept;
};
// Installs `memory` for the blocks taken from now on, and returns the one
// it replaces; each block goes back to the memory it came from.
BlockMemory use_block_memory(const BlockMemory& memory);

// n values of T, not initialised, in one block of BlockMemory's: the
// trainer's sample-major copies of the data (trainer.hpp), up to hundreds
// of MB made once per fit() call. With the R package's pool, a call after
// another over data of the same size writes into the last one's pages
// instead of faulting fresh ones in (bench/NOTES.md).
template <typename T>
class BlockArray {
 public:
  BlockArray() = default;
  explicit BlockArray(std::size_t n);
  BlockArray(BlockArray&& other) noexcept { swap(other); }
  BlockArray& operator=(BlockArray&& other) noexcept {
    BlockArray(std::move(other)).swap(*this);
    return *this;
  }
  ~BlockArray();

  T* data() const { return values_; }
  T& operator[](std::size_t i) const { return values_[i]; }
  std::size_t size() const { return size_; }

 private:
  void swap(BlockArray& other) noexcept;

  T* values_ = nullptr;
  std::size_t size_ = 0;
  void (*give_back_)(void*, std::size_t) noexcept = nullptr;
};

template <typename T>
struct LargePageAllocator {
  using value_type = T;

  LargePageAllocator() = default;
  template <typename U>
  LargePageAllocator(const LargePageAllocator<U>&) {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    return static_cast<T*>(large(bytes) ? allocate_large(bytes)
                                        : ::operator new(bytes, std::align_val_t(kLineBytes)));
  }
  void deallocate(T* p, std::size_t n) {
    if (large(n * sizeof(T))) {
      release_large(p);
    } else {
      ::operator delete(p, std::align_val_t(kLineBytes));
    }
  }

 private:
  static bool large(std::size_t bytes) { return bytes >= kLargePageBytes; }
};

template <typename T, typename U>
bool operator==(const LargePageAllocator<T>&, const LargePageAllocator<U>&) {
  return true;
}
template <typename T, typename U>
bool operator!=(const LargePageAllocator<T>&, const LargePageAllocator<U>&) {
  return false;
}

template <typename T>
using Buffer = std::vector<T, LargePageAllocator<T>>;

}  // namespace lcnn
