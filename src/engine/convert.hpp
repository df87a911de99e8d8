// Converting copies between the engine's arrays and R's doubles.
#pragma once

#include <algorithm>
#include <type_traits>

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

}  // namespace lcnn
