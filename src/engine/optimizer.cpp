#include "optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "parallel.hpp"

namespace lcnn {

// Parameters per item of an update step: enough to pay for handing it to a thread.
constexpr index_t kUpdateBlock = 4096;

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  if (name == "rmsprop") return OptimizerKind::rmsprop;
  if (name == "adagrad") return OptimizerKind::adagrad;
  throw std::invalid_argument("unknown optimizer '" + name + "'");
}

int slot_count(const OptimizerSpec& s) {
  switch (s.kind) {
    case OptimizerKind::sgd: return s.momentum > 0 ? 1 : 0;
    case OptimizerKind::adam: return s.amsgrad ? 3 : 2;
    case OptimizerKind::rmsprop: return 1 + (s.centered ? 1 : 0) + (s.momentum > 0 ? 1 : 0);
    case OptimizerKind::adagrad: return 1;
  }
  return 0;
}

template <typename T>
void Optimizer<T>::restore(double iterations, std::vector<std::vector<T>> slots) {
  iterations_ = iterations;
  slots_ = std::move(slots);
}

template <typename T>
void Optimizer<T>::step(const std::vector<ParameterBlock<T>*>& blocks, int threads) {
  const OptimizerSpec& s = spec_;
  const int n_slots = slot_count(s);
  // Fresh slots on first use, or if restored ones do not fit these blocks.
  bool fits = slots_.size() == blocks.size();
  for (std::size_t b = 0; fits && b < blocks.size(); ++b) {
    fits = slots_[b].size() == blocks[b]->values.size() * n_slots;
  }
  if (!fits) {
    slots_.assign(blocks.size(), {});
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const T start = s.kind == OptimizerKind::adagrad ? T(s.initial_accumulator_value) : T(0);
      slots_[b].assign(blocks[b]->values.size() * n_slots, start);
    }
  }
  iterations_ += 1;
  const double t = iterations_;
  const T lr = T(s.learning_rate), eps = T(s.epsilon), mom = T(s.momentum);
  // Adam's step size with both bias corrections folded in, as Keras does.
  const T alpha = T(s.learning_rate * std::sqrt(1 - std::pow(s.beta_2, t)) /
                    (1 - std::pow(s.beta_1, t)));
  const T b1 = T(s.beta_1), b2 = T(s.beta_2), rho = T(s.rho);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    std::vector<T>& w = blocks[b]->values;
    const std::vector<T>& g = blocks[b]->gradient;
    const index_t n = static_cast<index_t>(w.size());
    T* slot = slots_[b].data();
    for_each_block(n, kUpdateBlock, threads, [&](index_t start, index_t count) {
      for (index_t i = start; i < start + count; ++i) {
        switch (s.kind) {
          case OptimizerKind::sgd:
            if (s.momentum > 0) {
              T& m = slot[i];
              m = mom * m - lr * g[i];
              w[i] += s.nesterov ? mom * m - lr * g[i] : m;
            } else {
              w[i] -= lr * g[i];
            }
            break;
          case OptimizerKind::adam: {
            T& m = slot[i];
            T& v = slot[n + i];
            m += (g[i] - m) * (T(1) - b1);
            v += (g[i] * g[i] - v) * (T(1) - b2);
            T denom = v;
            if (s.amsgrad) {
              T& v_hat = slot[2 * n + i];
              v_hat = std::max(v_hat, v);
              denom = v_hat;
            }
            w[i] -= m * alpha / (std::sqrt(denom) + eps);
            break;
          }
          case OptimizerKind::rmsprop: {
            T& velocity = slot[i];
            velocity = rho * velocity + (T(1) - rho) * g[i] * g[i];
            T denom = velocity;
            int next = 1;
            if (s.centered) {
              T& mean_grad = slot[n * next++ + i];
              mean_grad = rho * mean_grad + (T(1) - rho) * g[i];
              denom -= mean_grad * mean_grad;
            }
            const T increment = lr * g[i] / std::sqrt(denom + eps);
            if (s.momentum > 0) {
              T& m = slot[n * next + i];
              m = mom * m + increment;
              w[i] -= m;
            } else {
              w[i] -= increment;
            }
            break;
          }
          case OptimizerKind::adagrad: {
            T& acc = slot[i];
            acc += g[i] * g[i];
            w[i] -= lr * g[i] / std::sqrt(acc + eps);
            break;
          }
        }
      }
    });
  }
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace lcnn
