// Converting copies between the engine's arrays and R's doubles.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "buffer.hpp"
#include "tensor.hpp"

namespace lcnn {

// to[i] = To(from[i]) for i in [0, n). Eight values per step: GCC turns a
// step into vector conversions at -O2 with any instruction set, where
// Eigen 3.3 converts between double and float one value at a time (a
// batch gather of R's doubles was bound by those conversions on two
// threads; bench/NOTES.md). Values of one type go to std::copy (memmove).
// The CPU kernel sets pass a `Set` of their own (elementwise_loss.hpp).
template <typename From, typename To, typename Set = void>
inline void convert_values(const From* from, To* to, index_t n) {
  if constexpr (std::is_same<From, To>::value) {
    std::copy(from, from + n, to);
  } else {
    constexpr index_t kStep = 8;
    index_t i = 0;
    for (; i + kStep <= n; i += kStep) {
#pragma GCC unroll 8
      for (index_t j = 0; j < kStep; ++j) to[i + j] = static_cast<To>(from[i + j]);
    }
    for (; i < n; ++i) to[i] = static_cast<To>(from[i]);
  }
}

// Whether a result of `bytes` bytes goes into R's array with streaming
// stores (write_result()): a large one is written once by predict() and
// read by R later, so reading its lines in before overwriting them only
// costs traffic (a third of W1's conversion; bench/NOTES.md). A smaller
// one goes through the cache, where R may find it.
inline bool streams_result(std::size_t bytes) { return bytes >= kLargePageBytes; }

// Runs r in [0, runs) of `count` values each into R's result:
// to[i + r * to_step] = double(from[i + r * from_step]) for i in [0, count).
// With streaming stores where `stream` is set and the build has SSE2 (floats
// only; the double engine copies), else through the cache. Streaming stores
// are weakly ordered: a thread ends its block of them with
// finish_streaming(). Out of line (convert.cpp), so one call takes a block
// of runs: a call per run read 3-4% slower on W1 (bench/NOTES.md).
void write_result(const float* from, index_t from_step, double* to, index_t to_step,
                  index_t count, index_t runs, bool stream);
void write_result(const double* from, index_t from_step, double* to, index_t to_step,
                  index_t count, index_t runs, bool stream);
void finish_streaming(bool stream);

}  // namespace lcnn
