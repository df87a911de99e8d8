#include "activation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "activation_formulas.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace lcnn {

Activation parse_activation(const std::string& name) {
  if (name == "linear") return Activation::linear;
  if (name == "relu") return Activation::relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "softmax") return Activation::softmax;
  if (name == "elu") return Activation::elu;
  if (name == "selu") return Activation::selu;
  if (name == "softplus") return Activation::softplus;
  if (name == "softsign") return Activation::softsign;
  if (name == "swish" || name == "silu") return Activation::swish;
  if (name == "gelu") return Activation::gelu;
  if (name == "hard_sigmoid") return Activation::hard_sigmoid;
  if (name == "exponential") return Activation::exponential;
  throw std::invalid_argument("unknown activation '" + name + "'");
}

namespace {

// Values per parallel block of an elementwise activation or its gradient.
constexpr index_t kActivationBlock = 4096;

// Calls f with the activation as a compile-time constant, so that the loop
// in f holds one formula: the switches of activation_value() and
// activation_derivative() fold away instead of running for every value.
template <typename F>
void with_activation(Activation a, F f) {
  using A = Activation;
  switch (a) {
    case A::linear: return f(std::integral_constant<A, A::linear>{});
    case A::relu: return f(std::integral_constant<A, A::relu>{});
    case A::sigmoid: return f(std::integral_constant<A, A::sigmoid>{});
    case A::tanh: return f(std::integral_constant<A, A::tanh>{});
    case A::elu: return f(std::integral_constant<A, A::elu>{});
    case A::selu: return f(std::integral_constant<A, A::selu>{});
    case A::softplus: return f(std::integral_constant<A, A::softplus>{});
    case A::softsign: return f(std::integral_constant<A, A::softsign>{});
    case A::swish: return f(std::integral_constant<A, A::swish>{});
    case A::gelu: return f(std::integral_constant<A, A::gelu>{});
    case A::hard_sigmoid: return f(std::integral_constant<A, A::hard_sigmoid>{});
    case A::exponential: return f(std::integral_constant<A, A::exponential>{});
    case A::softmax: break;
  }
  throw std::logic_error("softmax is not elementwise");
}

}  // namespace

template <typename T>
void activate_elementwise(Activation a, T* v, index_t n) {
  if (a == Activation::linear) return;
  // relu without a branch per value (on real data the sign of a
  // pre-activation is a coin toss, and a branch mispredicts half the
  // time), on the CPU's widest vectors: v kept where it is positive.
  if (a == Activation::relu) return keep_where_positive(v, v, v, n);
  with_activation(a, [&](auto kind) {
    for (index_t i = 0; i < n; ++i) v[i] = activation_value(kind.value, v[i]);
  });
}

template <typename T>
void softmax_last_axis(Tensor<T>& t) {
  // Column-major: the last axis has the largest stride, so each softmax group
  // is `len` values `stride` apart.
  const index_t len = t.shape.dims.back();
  const index_t stride = t.shape.size() / len;
  T* base = t.data.data();
  for (index_t start = 0; start < stride; ++start) softmax_group(base + start, len, stride);
}

template <typename T>
void activation_gradient(Activation a, const T* z, const T* y, const T* gy, T* gz, index_t n) {
  // dLoss/dy kept where z is positive (relu's derivative without a branch).
  if (a == Activation::relu) return keep_where_positive(z, gy, gz, n);
  with_activation(a, [&](auto kind) {
    for (index_t i = 0; i < n; ++i) gz[i] = gy[i] * activation_derivative(kind.value, z[i], y[i]);
  });
}

template <typename T>
void softmax_last_axis_gradient(const Tensor<T>& y, const Tensor<T>& gy, Tensor<T>& gz) {
  gz.resize(y.shape);
  const index_t len = y.shape.dims.back();
  const index_t stride = y.shape.size() / len;
  for (index_t start = 0; start < stride; ++start) {
    softmax_group_gradient(y.data.data() + start, gy.data.data() + start, gz.data.data() + start,
                           len, stride);
  }
}

template <typename T>
void OutputActivation<T>::apply(Tensor<T>& output, bool record, int threads) {
  if (kind_ == Activation::linear) return;
  if (record && kind_ != Activation::relu) pre_ = output;
  if (kind_ == Activation::softmax) return softmax_last_axis(output);
  T* data = output.data.data();
  for_each_block(output.shape.size(), kActivationBlock, threads, [&](index_t start, index_t count) {
    activate_elementwise(kind_, data + start, count);
  });
}

template <typename T>
const Tensor<T>& OutputActivation<T>::pre_gradient(const Tensor<T>& output,
                                                   const Tensor<T>& grad_output,
                                                   bool through_logits, Tensor<T>& scratch,
                                                   int threads) const {
  if (through_logits || kind_ == Activation::linear) return grad_output;
  gradient(output, grad_output, through_logits, scratch, threads);
  return scratch;
}

template <typename T>
void OutputActivation<T>::gradient(const Tensor<T>& output, const Tensor<T>& grad_output,
                                   bool through_logits, Tensor<T>& grad_pre,
                                   int threads) const {
  if (through_logits || kind_ == Activation::linear) {
    grad_pre = grad_output;
  } else if (kind_ == Activation::softmax) {
    softmax_last_axis_gradient(output, grad_output, grad_pre);
  } else {
    grad_pre.resize(output.shape);
    for_each_block(output.shape.size(), kActivationBlock, threads,
                   [&](index_t start, index_t count) {
                     gradient_run(output, grad_output, start, count, grad_pre.data.data() + start);
                   });
  }
}

template <typename T>
void OutputActivation<T>::gradient_run(const Tensor<T>& output, const Tensor<T>& grad_output,
                                       index_t first, index_t count, T* grad_pre) const {
  // relu's output is above zero exactly where its input is, which is all
  // its derivative asks of z: it keeps no copy of its input.
  const T* z = kind_ == Activation::relu ? output.data.data() : pre_.data.data();
  activation_gradient(kind_, z + first, output.data.data() + first,
                      grad_output.data.data() + first, grad_pre, count);
}

template void activate_elementwise<float>(Activation, float*, index_t);
template void activate_elementwise<double>(Activation, double*, index_t);
template void softmax_last_axis<float>(Tensor<float>&);
template void softmax_last_axis<double>(Tensor<double>&);
template void activation_gradient<float>(Activation, const float*, const float*, const float*,
                                         float*, index_t);
template void activation_gradient<double>(Activation, const double*, const double*,
                                          const double*, double*, index_t);
template void softmax_last_axis_gradient<float>(const Tensor<float>&, const Tensor<float>&,
                                                Tensor<float>&);
template void softmax_last_axis_gradient<double>(const Tensor<double>&, const Tensor<double>&,
                                                 Tensor<double>&);
template class OutputActivation<float>;
template class OutputActivation<double>;

}  // namespace lcnn
