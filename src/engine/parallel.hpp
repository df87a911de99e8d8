// Splitting work into fixed blocks for OpenMP: the blocks depend only on the
// problem size, never on the thread count, so results are the same for any
// number of threads.
#pragma once

#include <algorithm>

#include "tensor.hpp"

namespace lcnn {

template <typename Body>
void for_each_block(index_t n, index_t block, int threads, Body body) {
  const index_t blocks = (n + block - 1) / block;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (index_t k = 0; k < blocks; ++k) body(k * block, std::min(block, n - k * block));
}

}  // namespace lcnn
