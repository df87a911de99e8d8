#include "flatten.hpp"

#include <algorithm>
#include <numeric>

namespace lcnn {

namespace {

// The axis order Keras flattens in: channels last, then C order.
std::vector<std::size_t> flatten_order(const Shape& input, bool channels_first) {
  std::vector<std::size_t> order(input.rank());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (channels_first && order.size() >= 2) std::rotate(order.begin(), order.begin() + 1, order.end());
  return order;
}

}  // namespace

template <typename T>
Flatten<T>::Flatten(const Shape& input, bool channels_first)
    : Gather<T>(input, Shape{{input.size()}},
                c_order_sources(input, flatten_order(input, channels_first),
                                Shape{{input.size()}})) {}

template class Flatten<float>;
template class Flatten<double>;

}  // namespace lcnn
