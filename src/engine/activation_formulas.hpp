// The elementwise activations and their derivatives, one value at a time:
// the CPU engine (activation.cpp) and the CUDA kernels compute with these
// same functions. Keras 2 (tf-keras) definitions.
#pragma once

#include <cmath>

#include "activation.hpp"
#include "host_device.hpp"

namespace lcnn {

template <typename T>
LCNN_HOST_DEVICE inline T sigmoid_value(T x) {
  // Written so that neither branch overflows.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// SELU's constants as tf-keras defines them.
template <typename T>
LCNN_HOST_DEVICE inline T selu_alpha() {
  return T(1.6732632423543772848170429916717);
}
template <typename T>
LCNN_HOST_DEVICE inline T selu_scale() {
  return T(1.0507009873554804934193349852946);
}

// a(x) for every activation but softmax (which is not elementwise: its
// caller handles it; x comes back unchanged).
template <typename T>
LCNN_HOST_DEVICE inline T activation_value(Activation a, T x) {
  switch (a) {
    case Activation::linear:
    case Activation::softmax:
      return x;
    case Activation::relu:
      return x > 0 ? x : T(0);
    case Activation::sigmoid:
      return sigmoid_value(x);
    case Activation::tanh:
      return std::tanh(x);
    case Activation::elu:
      return x > 0 ? x : std::expm1(x);
    case Activation::selu:
      return selu_scale<T>() * (x > 0 ? x : selu_alpha<T>() * std::expm1(x));
    case Activation::softplus: {
      // log(1 + exp(x)) without overflow for large x.
      const T positive = x < T(0) ? T(0) : x;  // std::max(x, 0), NaN kept
      return positive + std::log1p(std::exp(-std::fabs(x)));
    }
    case Activation::softsign:
      return x / (std::fabs(x) + T(1));
    case Activation::swish:
      return x * sigmoid_value(x);
    case Activation::gelu:
      // tf-keras's default is the exact (erf) form, approximate = FALSE.
      return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2))));
    case Activation::hard_sigmoid: {
      // Keras 2's piecewise line 0.2 x + 0.5 (Keras 3 changed it to x / 6 + 0.5).
      const T line = T(0.2) * x + T(0.5);
      const T above = T(0) < line ? line : T(0);  // std::max(0, line)
      return above < T(1) ? above : T(1);         // std::min(1, above)
    }
    case Activation::exponential:
      return std::exp(x);
  }
  return x;
}

// da/dz of y = a(z), from z and y, for every activation but softmax.
template <typename T>
LCNN_HOST_DEVICE inline T activation_derivative(Activation a, T z, T y) {
  switch (a) {
    case Activation::linear:
    case Activation::softmax:
      return T(1);
    case Activation::relu:
      return z > 0 ? T(1) : T(0);
    case Activation::sigmoid:
      return y * (T(1) - y);
    case Activation::tanh:
      return T(1) - y * y;
    case Activation::elu:
      return z > 0 ? T(1) : y + T(1);
    case Activation::selu:
      return z > 0 ? selu_scale<T>() : y + selu_scale<T>() * selu_alpha<T>();
    case Activation::softplus:
      return sigmoid_value(z);
    case Activation::softsign: {
      const T t = T(1) + std::fabs(z);
      return T(1) / (t * t);
    }
    case Activation::swish: {
      const T s = sigmoid_value(z);
      return s + z * s * (T(1) - s);
    }
    case Activation::gelu: {
      const T inv_sqrt_2pi = T(0.39894228040143267793994605993438);
      return T(0.5) * (T(1) + std::erf(z / std::sqrt(T(2)))) +
             z * inv_sqrt_2pi * std::exp(T(-0.5) * z * z);
    }
    case Activation::hard_sigmoid:
      return (z > T(-2.5) && z < T(2.5)) ? T(0.2) : T(0);
    case Activation::exponential:
      return y;
  }
  return T(1);
}

// Softmax of one group of `len` values `stride` apart, in place.
template <typename T, typename Index>
LCNN_HOST_DEVICE inline void softmax_group(T* v, Index len, Index stride) {
  T top = v[0];
  for (Index i = 1; i < len; ++i) top = top < v[i * stride] ? v[i * stride] : top;
  T total = 0;
  for (Index i = 0; i < len; ++i) {
    v[i * stride] = std::exp(v[i * stride] - top);
    total += v[i * stride];
  }
  for (Index i = 0; i < len; ++i) v[i * stride] /= total;
}

// dLoss/dz of one softmax group y = softmax(z), from y and dLoss/dy.
template <typename T, typename Index>
LCNN_HOST_DEVICE inline void softmax_group_gradient(const T* y, const T* gy, T* gz, Index len,
                                                    Index stride) {
  T dot = 0;
  for (Index i = 0; i < len; ++i) dot += y[i * stride] * gy[i * stride];
  for (Index i = 0; i < len; ++i) gz[i * stride] = y[i * stride] * (gy[i * stride] - dot);
}

}  // namespace lcnn
