// Flatten, as Keras's: each sample's values in C (row-major) order of its
// axes; a channels_first input is first moved to channels-last order.
#pragma once

#include "reshaping.hpp"

namespace lcnn {

template <typename T>
class Flatten : public Gather<T> {
 public:
  Flatten(const Shape& input, bool channels_first);
};

}  // namespace lcnn
