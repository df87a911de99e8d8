#include "activation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "activation_formulas.hpp"
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

// One activation over n values, its kind a constant so that
// activation_value()'s switch folds away inside the loop.
template <Activation A, typename T>
void activate_as(T* v, index_t n) {
  for (index_t i = 0; i < n; ++i) v[i] = activation_value(A, v[i]);
}

}  // namespace

template <typename T>
void activate_elementwise(Activation a, T* v, index_t n) {
  switch (a) {
    case Activation::linear: return;
    case Activation::relu: return activate_as<Activation::relu>(v, n);
    case Activation::sigmoid: return activate_as<Activation::sigmoid>(v, n);
    case Activation::tanh: return activate_as<Activation::tanh>(v, n);
    case Activation::elu: return activate_as<Activation::elu>(v, n);
    case Activation::selu: return activate_as<Activation::selu>(v, n);
    case Activation::softplus: return activate_as<Activation::softplus>(v, n);
    case Activation::softsign: return activate_as<Activation::softsign>(v, n);
    case Activation::swish: return activate_as<Activation::swish>(v, n);
    case Activation::gelu: return activate_as<Activation::gelu>(v, n);
    case Activation::hard_sigmoid: return activate_as<Activation::hard_sigmoid>(v, n);
    case Activation::exponential: return activate_as<Activation::exponential>(v, n);
    case Activation::softmax: throw std::logic_error("softmax is not elementwise");
  }
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
  if (a == Activation::softmax) throw std::logic_error("softmax is not elementwise");
  for (index_t i = 0; i < n; ++i) gz[i] = gy[i] * activation_derivative(a, z[i], y[i]);
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
  if (record) pre_ = output;
  if (kind_ == Activation::softmax) return softmax_last_axis(output);
  const index_t n = output.shape.size();
  const index_t chunk = 4096;
  T* data = output.data.data();
  for_each_block(n, chunk, threads, [&](index_t start, index_t count) {
    activate_elementwise(kind_, data + start, count);
  });
}

template <typename T>
const Tensor<T>& OutputActivation<T>::pre_gradient(const Tensor<T>& output,
                                                   const Tensor<T>& grad_output,
                                                   bool through_logits, Tensor<T>& scratch) const {
  if (through_logits || kind_ == Activation::linear) return grad_output;
  gradient(output, grad_output, through_logits, scratch);
  return scratch;
}

template <typename T>
void OutputActivation<T>::gradient(const Tensor<T>& output, const Tensor<T>& grad_output,
                                   bool through_logits, Tensor<T>& grad_pre) const {
  if (through_logits || kind_ == Activation::linear) {
    grad_pre = grad_output;
  } else if (kind_ == Activation::softmax) {
    softmax_last_axis_gradient(output, grad_output, grad_pre);
  } else {
    grad_pre.resize(output.shape);
    activation_gradient(kind_, pre_.data.data(), output.data.data(), grad_output.data.data(),
                        grad_pre.data.data(), output.shape.size());
  }
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
