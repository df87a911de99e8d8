// How the kernels of src/cuda run: on a GPU when nvcc compiles them, or on
// the host, one simulated thread after another, when a C++ compiler does
// with LCNN_CUDA_EMULATE (tests/cpp's test-cuda target, for machines
// without a GPU). Kernels therefore use no shared memory and no
// __syncthreads(): each thread owns its outputs (one per output element,
// in grid-stride loops) and reductions run serially inside one thread, which
// also makes every result independent of the launch shape.
#pragma once

#include <cstdint>

#ifdef LCNN_CUDA_EMULATE

#define LCNN_KERNEL
#define LCNN_DEVICE

namespace lcnn {
namespace cuda {
namespace emulation {

struct Index {
  unsigned x = 0;
};
// The simulated thread's coordinates, as CUDA's built-in variables.
inline Index& block_index() {
  static Index index;
  return index;
}
inline Index& thread_in_block() {
  static Index index;
  return index;
}
inline Index& block_size() {
  static Index size;
  return size;
}
inline Index& grid_size() {
  static Index size;
  return size;
}

}  // namespace emulation

template <typename Kernel, typename... Args>
void launch(unsigned blocks, unsigned threads, Kernel kernel, Args... args) {
  emulation::grid_size().x = blocks;
  emulation::block_size().x = threads;
  for (unsigned b = 0; b < blocks; ++b) {
    emulation::block_index().x = b;
    for (unsigned t = 0; t < threads; ++t) {
      emulation::thread_in_block().x = t;
      kernel(args...);
    }
  }
}

inline std::int64_t thread_index() {
  return std::int64_t(emulation::block_index().x) * emulation::block_size().x +
         emulation::thread_in_block().x;
}
inline std::int64_t thread_count() {
  return std::int64_t(emulation::grid_size().x) * emulation::block_size().x;
}

}  // namespace cuda
}  // namespace lcnn

#else

#define LCNN_KERNEL __global__
#define LCNN_DEVICE __device__

namespace lcnn {
namespace cuda {

// The runtime's one stream (runtime.cu): kernels and cuBLAS calls run in
// order on it, and copies to the host wait for them.
cudaStream_t stream();
// Throws lcnn::cuda::Error when the launch failed.
void check_launch(const char* what);

template <typename Kernel, typename... Args>
void launch(unsigned blocks, unsigned threads, Kernel kernel, Args... args) {
  kernel<<<blocks, threads, 0, stream()>>>(args...);
  check_launch("kernel launch");
}

__device__ inline std::int64_t thread_index() {
  return std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline std::int64_t thread_count() { return std::int64_t(gridDim.x) * blockDim.x; }

}  // namespace cuda
}  // namespace lcnn

#endif

namespace lcnn {
namespace cuda {

constexpr unsigned kThreadsPerBlock = 256;
// Enough blocks to fill any current GPU; grid-stride loops cover the rest.
constexpr std::int64_t kMaxBlocks = 65535;

// Blocks for one thread per item, at most kMaxBlocks.
inline unsigned blocks_for(std::int64_t items) {
  const std::int64_t blocks = (items + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

}  // namespace cuda
}  // namespace lcnn
