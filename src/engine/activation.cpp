#include "activation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

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

template <typename T>
void activation_gradient(Activation a, const T* z, const T* y, const T* gy, T* gz, index_t n) {
  const T selu_alpha = T(1.6732632423543772848170429916717);
  const T selu_scale = T(1.0507009873554804934193349852946);
  const T inv_sqrt_2pi = T(0.39894228040143267793994605993438);
  for (index_t i = 0; i < n; ++i) {
    T d = 1;
    switch (a) {
      case Activation::linear: d = 1; break;
      case Activation::relu: d = z[i] > 0 ? T(1) : T(0); break;
      case Activation::sigmoid: d = y[i] * (T(1) - y[i]); break;
      case Activation::tanh: d = T(1) - y[i] * y[i]; break;
      case Activation::elu: d = z[i] > 0 ? T(1) : y[i] + T(1); break;
      case Activation::selu: d = z[i] > 0 ? selu_scale : y[i] + selu_scale * selu_alpha; break;
      case Activation::softplus: d = sigmoid(z[i]); break;
      case Activation::softsign: {
        const T t = T(1) + std::abs(z[i]);
        d = T(1) / (t * t);
        break;
      }
      case Activation::swish: {
        const T s = sigmoid(z[i]);
        d = s + z[i] * s * (T(1) - s);
        break;
      }
      case Activation::gelu:
        d = T(0.5) * (T(1) + std::erf(z[i] / std::sqrt(T(2)))) +
            z[i] * inv_sqrt_2pi * std::exp(T(-0.5) * z[i] * z[i]);
        break;
      case Activation::hard_sigmoid: d = (z[i] > T(-2.5) && z[i] < T(2.5)) ? T(0.2) : T(0); break;
      case Activation::exponential: d = y[i]; break;
      case Activation::softmax: throw std::logic_error("softmax is not elementwise");
    }
    gz[i] = gy[i] * d;
  }
}

template <typename T>
void softmax_last_axis_gradient(const Tensor<T>& y, const Tensor<T>& gy, Tensor<T>& gz) {
  gz.resize(y.shape);
  const index_t len = y.shape.dims.back();
  const index_t stride = y.shape.size() / len;
  for (index_t start = 0; start < stride; ++start) {
    T dot = 0;
    for (index_t i = 0; i < len; ++i) dot += y.data[start + i * stride] * gy.data[start + i * stride];
    for (index_t i = 0; i < len; ++i) {
      const index_t k = start + i * stride;
      gz.data[k] = y.data[k] * (gy.data[k] - dot);
    }
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
