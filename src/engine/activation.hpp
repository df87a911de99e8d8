// Activations with Keras 2 (tf-keras) definitions.
#pragma once

#include <string>

#include "tensor.hpp"

namespace lcnn {

enum class Activation {
  linear,
  relu,
  sigmoid,
  tanh,
  softmax,
  elu,
  selu,
  softplus,
  softsign,
  swish,
  gelu,
  hard_sigmoid,
  exponential
};

// Accepts the Keras names ("silu" is an alias of "swish"); throws
// std::invalid_argument for anything else.
Activation parse_activation(const std::string& name);

// True for activations that act on each element alone (all but softmax).
inline bool is_elementwise(Activation a) { return a != Activation::softmax; }

// Applies an elementwise activation in place to n contiguous values.
template <typename T>
void activate_elementwise(Activation a, T* values, index_t n);

// Softmax over the last Keras axis of a column-major tensor, as Keras's
// softmax(axis = -1) does whatever the data format.
template <typename T>
void softmax_last_axis(Tensor<T>& t);

}  // namespace lcnn
