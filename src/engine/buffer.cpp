#include "buffer.hpp"

#include <cstdint>
#include <cstdlib>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace lcnn {

#if defined(__linux__) && defined(MADV_HUGEPAGE)

void* allocate_large(std::size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kLargePageBytes, bytes) != 0) throw std::bad_alloc();
  // Whole large pages only: the last partial one stays on small pages, so
  // the buffer's resident memory is not rounded up to 2 MiB. Advice that a
  // kernel without transparent huge pages refuses changes nothing else.
  madvise(p, bytes / kLargePageBytes * kLargePageBytes, MADV_HUGEPAGE);
  return p;
}

void release_large(void* p) { std::free(p); }

bool maps_blocks() { return true; }

std::size_t whole_pages(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

void* map_block(std::size_t bytes, PageSize pages) {
  if (pages == PageSize::base) {
    void* p = mmap(nullptr, whole_pages(bytes), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // A large page more than asked for, so that a boundary lies within; the
  // pages before that boundary and after the block go back at once.
  const std::size_t mapped = bytes + kLargePageBytes;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto first = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t start = (first + kLargePageBytes - 1) / kLargePageBytes * kLargePageBytes;
  const std::uintptr_t end = start + whole_pages(bytes);
  if (start > first) munmap(p, start - first);
  if (first + mapped > end) munmap(reinterpret_cast<void*>(end), first + mapped - end);
  madvise(reinterpret_cast<void*>(start), bytes / kLargePageBytes * kLargePageBytes, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(start);
}

void unmap_block(void* p, std::size_t bytes) { munmap(p, bytes); }

void free_pages_lazily(void* p, std::size_t bytes) {
#if defined(MADV_FREE)
  madvise(p, bytes, MADV_FREE);
#endif
}

#else

void* allocate_large(std::size_t bytes) {
  return ::operator new(bytes, std::align_val_t(kLineBytes));
}
void release_large(void* p) { ::operator delete(p, std::align_val_t(kLineBytes)); }

bool maps_blocks() { return false; }
std::size_t whole_pages(std::size_t bytes) { return bytes; }
void* map_block(std::size_t, PageSize) { return nullptr; }
void unmap_block(void*, std::size_t) {}
void free_pages_lazily(void*, std::size_t) {}

#endif

namespace {

void* take_from_heap(std::size_t bytes) {
  return ::operator new(bytes, std::align_val_t(kLineBytes));
}
void give_back_to_heap(void* block, std::size_t) noexcept {
  ::operator delete(block, std::align_val_t(kLineBytes));
}

BlockMemory block_memory{take_from_heap, give_back_to_heap};

}  // namespace

BlockMemory use_block_memory(const BlockMemory& memory) {
  return std::exchange(block_memory, memory);
}

template <typename T>
BlockArray<T>::BlockArray(std::size_t n)
    : values_(n > 0 ? static_cast<T*>(block_memory.take(n * sizeof(T))) : nullptr),
      size_(n),
      give_back_(block_memory.give_back) {}

template <typename T>
BlockArray<T>::~BlockArray() {
  if (values_ != nullptr) give_back_(values_, size_ * sizeof(T));
}

template <typename T>
void BlockArray<T>::swap(BlockArray& other) noexcept {
  std::swap(values_, other.values_);
  std::swap(size_, other.size_);
  std::swap(give_back_, other.give_back_);
}

template class BlockArray<float>;
template class BlockArray<double>;

}  // namespace lcnn
