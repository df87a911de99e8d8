// One optimizer step of one parameter, as the CUDA kernels take it (one
// thread per parameter). The CPU engine (Optimizer::step) writes the same
// rules as vectorised passes over blocks of parameters.
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

// Updates w[i] from g[i] and parameter i's slots, which lie n apart from
// slot[i] (see slot_count() for which and in what order).
template <typename T>
LCNN_HOST_DEVICE inline void update_parameter(const UpdateRule<T>& s, T* w, const T* g, T* slot,
                                              std::int64_t n, std::int64_t i) {
  switch (s.kind) {
    case OptimizerKind::sgd:
      if (s.momentum > 0) {
        T& m = slot[i];
        m = s.momentum * m - s.learning_rate * g[i];
        w[i] += s.nesterov ? s.momentum * m - s.learning_rate * g[i] : m;
      } else {
        w[i] -= s.learning_rate * g[i];
      }
      return;
    case OptimizerKind::adam: {
      T& m = slot[i];
      T& v = slot[n + i];
      m += (g[i] - m) * (T(1) - s.beta_1);
      v += (g[i] * g[i] - v) * (T(1) - s.beta_2);
      T denom = v;
      if (s.amsgrad) {
        T& v_hat = slot[2 * n + i];
        v_hat = v_hat < v ? v : v_hat;  // std::max(v_hat, v)
        denom = v_hat;
      }
      w[i] -= m * s.alpha / (std::sqrt(denom) + s.epsilon);
      return;
    }
    case OptimizerKind::rmsprop: {
      T& velocity = slot[i];
      velocity = s.rho * velocity + (T(1) - s.rho) * g[i] * g[i];
      T denom = velocity;
      int next = 1;
      if (s.centered) {
        T& mean_grad = slot[n * next++ + i];
        mean_grad = s.rho * mean_grad + (T(1) - s.rho) * g[i];
        denom -= mean_grad * mean_grad;
      }
      const T increment = s.learning_rate * g[i] / std::sqrt(denom + s.epsilon);
      if (s.momentum > 0) {
        T& m = slot[n * next + i];
        m = s.momentum * m + increment;
        w[i] -= m;
      } else {
        w[i] -= increment;
      }
      return;
    }
    case OptimizerKind::adagrad: {
      T& acc = slot[i];
      acc += g[i] * g[i];
      w[i] -= s.learning_rate * g[i] / std::sqrt(acc + s.epsilon);
      return;
    }
  }
}

}  // namespace lcnn
