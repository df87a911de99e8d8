// One optimizer step of one parameter: the rule the CUDA kernels run one
// thread per parameter and the CPU kernels one vector of parameters at a
// time.
#pragma once

#include <cmath>
#include <cstdint>

#include "host_device.hpp"

namespace lcnn {

enum class OptimizerKind { sgd, adam, rmsprop, adagrad };

// An optimizer's constants for one step, in the parameters' float type.
template <typename T>
struct UpdateRule {
  OptimizerKind kind = OptimizerKind::sgd;
  T learning_rate = 0, epsilon = 0, momentum = 0;
  // Adam's step size with both bias corrections folded in, as Keras does.
  T alpha = 0;
  T beta_1 = 0, beta_2 = 0, rho = 0;
  bool nesterov = false, amsgrad = false, centered = false;
};

// One optimizer step of one parameter: its value w from its gradient g and
// its slots, slot k at slot[k * stride] (see slot_count() for which and in
// what order). V is the parameter type T, or on the CPU a vector of T whose
// lanes hold one parameter each (update_parameters(), gemm_kernels.cpp);
// root(x) is the square root of a V. One rule for the device, the CPU
// kernels and their tests.
template <typename T, typename V, typename Root>
LCNN_HOST_DEVICE LCNN_ALWAYS_INLINE void update_value(const UpdateRule<T>& s, V& w, const V& g,
                                                      V* slot, std::int64_t stride, Root root) {
  switch (s.kind) {
    case OptimizerKind::sgd:
      if (s.momentum > 0) {
        V& m = slot[0];
        m = s.momentum * m - s.learning_rate * g;
        w += s.nesterov ? V(s.momentum * m - s.learning_rate * g) : m;
      } else {
        w -= s.learning_rate * g;
      }
      return;
    case OptimizerKind::adam: {
      V& m = slot[0];
      V& v = slot[stride];
      m += (g - m) * (T(1) - s.beta_1);
      v += (g * g - v) * (T(1) - s.beta_2);
      V denom = v;
      if (s.amsgrad) {
        V& v_hat = slot[2 * stride];
        v_hat = v_hat < v ? v : v_hat;  // the larger
        denom = v_hat;
      }
      w -= m * s.alpha / (root(denom) + s.epsilon);
      return;
    }
    case OptimizerKind::rmsprop: {
      V& velocity = slot[0];
      velocity = s.rho * velocity + (T(1) - s.rho) * g * g;
      V denom = velocity;
      int next = 1;
      if (s.centered) {
        V& mean_grad = slot[stride * next++];
        mean_grad = s.rho * mean_grad + (T(1) - s.rho) * g;
        denom -= mean_grad * mean_grad;
      }
      const V increment = s.learning_rate * g / root(denom + s.epsilon);
      if (s.momentum > 0) {
        V& m = slot[stride * next];
        m = s.momentum * m + increment;
        w -= m;
      } else {
        w -= increment;
      }
      return;
    }
    case OptimizerKind::adagrad: {
      V& acc = slot[0];
      acc += g * g;
      w -= s.learning_rate * g / root(acc + s.epsilon);
      return;
    }
  }
}

struct ScalarRoot {
  template <typename T>
  LCNN_HOST_DEVICE LCNN_ALWAYS_INLINE T operator()(T x) const {
    return std::sqrt(x);
  }
};

// Updates w[i] from g[i] and parameter i's slots, which lie n apart from
// slot[i], as the device does it (one thread per parameter).
template <typename T>
LCNN_HOST_DEVICE inline void update_parameter(const UpdateRule<T>& s, T* w, const T* g, T* slot,
                                              std::int64_t n, std::int64_t i) {
  update_value(s, w[i], g[i], slot != nullptr ? slot + i : nullptr, n, ScalarRoot{});
}

}  // namespace lcnn
