// The gradient of a weight penalty l1 |w| + l2 w^2 at one weight: the CPU
// trainer and the CUDA kernels add it with this same function.
#pragma once

#include "host_device.hpp"

namespace lcnn {

template <typename T>
LCNN_HOST_DEVICE inline T penalty_gradient(T w, T l1, T two_l2) {
  const T sign = w > 0 ? T(1) : w < 0 ? T(-1) : T(0);
  return l1 * sign + two_l2 * w;
}

}  // namespace lcnn
