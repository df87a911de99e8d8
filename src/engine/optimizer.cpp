#include "optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "gemm.hpp"
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
void Optimizer<T>::prepare(const std::vector<ParameterBlock<T>*>& blocks) {
  const int n_slots = slot_count(spec_);
  // Fresh slots on first use, or if restored ones do not fit these blocks.
  bool fits = slots_.size() == blocks.size();
  for (std::size_t b = 0; fits && b < blocks.size(); ++b) {
    fits = slots_[b].size() == blocks[b]->values.size() * n_slots;
  }
  if (!fits) {
    slots_.assign(blocks.size(), {});
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const T start =
          spec_.kind == OptimizerKind::adagrad ? T(spec_.initial_accumulator_value) : T(0);
      slots_[b].assign(blocks[b]->values.size() * n_slots, start);
    }
  }
  blocks_ = blocks;
  rule_ = update_rule<T>(spec_, iterations_ + 1);
}

template <typename T>
void Optimizer<T>::update(std::size_t b, index_t start, index_t count, const T* gradient) {
  const index_t n = static_cast<index_t>(blocks_[b]->values.size());
  const int slots = n > 0 ? static_cast<int>(slots_[b].size() / n) : 0;
  update_parameters(rule_, blocks_[b]->values.data() + start, gradient,
                    slots > 0 ? slots_[b].data() + start : nullptr, slots, n, count);
}

template <typename T>
void Optimizer<T>::update_block(std::size_t b, int threads) {
  const T* const gradient = blocks_[b]->gradient.data();
  for_each_block(static_cast<index_t>(blocks_[b]->values.size()), kUpdateBlock, threads,
                 [&](index_t start, index_t count) { update(b, start, count, gradient + start); });
}

template <typename T>
void Optimizer<T>::step(const std::vector<ParameterBlock<T>*>& blocks, int threads) {
  prepare(blocks);
  for (std::size_t b = 0; b < blocks.size(); ++b) update_block(b, threads);
  finish_step();
}

template UpdateRule<float> update_rule<float>(const OptimizerSpec&, double);
template UpdateRule<double> update_rule<double>(const OptimizerSpec&, double);
template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace lcnn
