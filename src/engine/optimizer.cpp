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
UpdateRule<T> update_rule(const OptimizerSpec& s, double t) {
  UpdateRule<T> rule;
  rule.kind = s.kind;
  rule.learning_rate = T(s.learning_rate);
  rule.epsilon = T(s.epsilon);
  rule.momentum = T(s.momentum);
  rule.alpha = T(s.learning_rate * std::sqrt(1 - std::pow(s.beta_2, t)) /
                 (1 - std::pow(s.beta_1, t)));
  rule.beta_1 = T(s.beta_1);
  rule.beta_2 = T(s.beta_2);
  rule.rho = T(s.rho);
  rule.nesterov = s.nesterov;
  rule.amsgrad = s.amsgrad;
  rule.centered = s.centered;
  return rule;
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
  const UpdateRule<T> rule = update_rule<T>(s, iterations_);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    T* w = blocks[b]->values.data();
    const T* g = blocks[b]->gradient.data();
    const index_t n = static_cast<index_t>(blocks[b]->values.size());
    T* slot = slots_[b].data();
    for_each_block(n, kUpdateBlock, threads, [&](index_t start, index_t count) {
      for (index_t i = start; i < start + count; ++i) update_parameter(rule, w, g, slot, n, i);
    });
  }
}

template UpdateRule<float> update_rule<float>(const OptimizerSpec&, double);
template UpdateRule<double> update_rule<double>(const OptimizerSpec&, double);
template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace lcnn
