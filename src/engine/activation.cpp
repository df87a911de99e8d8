#include "activation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

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

template <typename T>
T sigmoid(T x) {
  // Written so that neither branch overflows.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <typename T, typename F>
void map_in_place(T* values, index_t n, F f) {
  for (index_t i = 0; i < n; ++i) values[i] = f(values[i]);
}

}  // namespace

template <typename T>
void activate_elementwise(Activation a, T* v, index_t n) {
  // SELU constants as tf-keras defines them.
  const T selu_alpha = T(1.6732632423543772848170429916717);
  const T selu_scale = T(1.0507009873554804934193349852946);
  switch (a) {
    case Activation::linear:
      return;
    case Activation::relu:
      return map_in_place(v, n, [](T x) { return x > 0 ? x : T(0); });
    case Activation::sigmoid:
      return map_in_place(v, n, [](T x) { return sigmoid(x); });
    case Activation::tanh:
      return map_in_place(v, n, [](T x) { return std::tanh(x); });
    case Activation::elu:
      return map_in_place(v, n, [](T x) { return x > 0 ? x : std::expm1(x); });
    case Activation::selu:
      return map_in_place(v, n, [=](T x) {
        return selu_scale * (x > 0 ? x : selu_alpha * std::expm1(x));
      });
    case Activation::softplus:
      // log(1 + exp(x)) without overflow for large x.
      return map_in_place(v, n, [](T x) {
        return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
      });
    case Activation::softsign:
      return map_in_place(v, n, [](T x) { return x / (std::abs(x) + T(1)); });
    case Activation::swish:
      return map_in_place(v, n, [](T x) { return x * sigmoid(x); });
    case Activation::gelu:
      // tf-keras's default is the exact (erf) form, approximate = FALSE.
      return map_in_place(v, n, [](T x) {
        return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2))));
      });
    case Activation::hard_sigmoid:
      // Keras 2's piecewise line 0.2 x + 0.5 (Keras 3 changed it to x / 6 + 0.5).
      return map_in_place(v, n, [](T x) {
        return std::min(T(1), std::max(T(0), T(0.2) * x + T(0.5)));
      });
    case Activation::exponential:
      return map_in_place(v, n, [](T x) { return std::exp(x); });
    case Activation::softmax:
      throw std::logic_error("softmax is not elementwise");
  }
}

template <typename T>
void softmax_last_axis(Tensor<T>& t) {
  // Column-major: the last axis has the largest stride, so each softmax group
  // is `len` values `stride` apart.
  const index_t len = t.shape.dims.back();
  const index_t stride = t.shape.size() / len;
  T* base = t.data.data();
  for (index_t start = 0; start < stride; ++start) {
    T* v = base + start;
    T top = v[0];
    for (index_t i = 1; i < len; ++i) top = std::max(top, v[i * stride]);
    T total = 0;
    for (index_t i = 0; i < len; ++i) {
      v[i * stride] = std::exp(v[i * stride] - top);
      total += v[i * stride];
    }
    for (index_t i = 0; i < len; ++i) v[i * stride] /= total;
  }
}

template void activate_elementwise<float>(Activation, float*, index_t);
template void activate_elementwise<double>(Activation, double*, index_t);
template void softmax_last_axis<float>(Tensor<float>&);
template void softmax_last_axis<double>(Tensor<double>&);

}  // namespace lcnn
