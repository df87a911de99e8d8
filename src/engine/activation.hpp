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

// Applies an elementwise activation in place to n contiguous values.
template <typename T>
void activate_elementwise(Activation a, T* values, index_t n);

// Softmax over the last Keras axis of a column-major tensor, as Keras's
// softmax(axis = -1) does whatever the data format.
template <typename T>
void softmax_last_axis(Tensor<T>& t);

// dLoss/dz of an elementwise activation y = a(z), from z, y and dLoss/dy.
template <typename T>
void activation_gradient(Activation a, const T* z, const T* y, const T* grad_y, T* grad_z,
                         index_t n);

// dLoss/dz of the last-axis softmax y = softmax(z), from y and dLoss/dy.
template <typename T>
void softmax_last_axis_gradient(const Tensor<T>& y, const Tensor<T>& grad_y, Tensor<T>& grad_z);

// An output activation as layers use it: applied in place once the
// pre-activation is in the output, keeping the pre-activation (the logits)
// when recording so that backward() can differentiate through it. A linear
// activation keeps nothing: its output is its pre-activation, and no loss
// takes its logits. Nor does relu: its output has its input's signs, all
// its derivative needs, and no loss takes its logits.
template <typename T>
class OutputActivation {
 public:
  explicit OutputActivation(Activation a) : kind_(a) {}
  Activation kind() const { return kind_; }
  void apply(Tensor<T>& output, bool record, int threads);
  // dLoss/dPre-activation from dLoss/dOutput (or a copy of it when the loss
  // already differentiated through the logits).
  void gradient(const Tensor<T>& output, const Tensor<T>& grad_output, bool through_logits,
                Tensor<T>& grad_pre, int threads) const;
  // The same without the copy: grad_output itself where it passes unchanged
  // (linear, or through the logits), else gradient() computed into `scratch`.
  const Tensor<T>& pre_gradient(const Tensor<T>& output, const Tensor<T>& grad_output,
                                bool through_logits, Tensor<T>& scratch, int threads) const;
  const Tensor<T>* logits() const { return &pre_; }
  // Whether gradient() and pre_gradient() read the output.
  bool gradient_reads_output(bool through_logits) const {
    return !through_logits && kind_ != Activation::linear;
  }
  // Whether gradient() takes each value on its own (an activation other
  // than linear and softmax, not differentiated through the logits): a
  // layer can then compute it run by run with gradient_run() as it reads
  // each part, instead of in a pass of its own over the whole tensor.
  bool gradient_by_value(bool through_logits) const {
    return gradient_reads_output(through_logits) && kind_ != Activation::softmax;
  }
  // gradient() of the `count` values from `first` on, into grad_pre[0, count),
  // where gradient_by_value().
  void gradient_run(const Tensor<T>& output, const Tensor<T>& grad_output, index_t first,
                    index_t count, T* grad_pre) const;

 private:
  Activation kind_;
  Tensor<T> pre_;
};

}  // namespace lcnn
