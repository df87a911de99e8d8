#include "buffer.hpp"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
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

#else

void* allocate_large(std::size_t bytes) {
  return ::operator new(bytes, std::align_val_t(kLineBytes));
}
void release_large(void* p) { ::operator delete(p, std::align_val_t(kLineBytes)); }

#endif

}  // namespace lcnn
