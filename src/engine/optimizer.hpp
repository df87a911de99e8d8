// Optimizers with the update rules and defaults of Keras 2.11+ (tf-keras's
// optimizers): they update flat parameter blocks from their gradients and
// keep their state (slots) beside them.
#pragma once

#include <string>
#include <vector>

#include "layer.hpp"
#include "optimizer_update.hpp"

namespace lcnn {

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::sgd;
  double learning_rate = 0.01;
  double momentum = 0;  // sgd, rmsprop
  bool nesterov = false;
  double beta_1 = 0.9, beta_2 = 0.999;  // adam
  bool amsgrad = false;
  double rho = 0.9;  // rmsprop
  bool centered = false;
  double initial_accumulator_value = 0.1;  // adagrad
  double epsilon = 1e-7;
};

OptimizerKind parse_optimizer(const std::string& name);

// Slots per parameter block: sgd momentum; adam m, v (and v_hat with
// amsgrad); rmsprop velocity (and mean gradient if centered, momentum if
// > 0); adagrad accumulator.
int slot_count(const OptimizerSpec& spec);

// The constants of step number `iteration` (from 1).
template <typename T>
UpdateRule<T> update_rule(const OptimizerSpec& spec, double iteration);

template <typename T>
class Optimizer {
 public:
  explicit Optimizer(const OptimizerSpec& spec) : spec_(spec) {}
  const OptimizerSpec& spec() const { return spec_; }
  void set_learning_rate(double lr) { spec_.learning_rate = lr; }
  // Applies one update to every block (allocating slots on first use).
  void step(const std::vector<ParameterBlock<T>*>& blocks, int threads);

  // The same step in parts, for updates applied while gradients are still
  // being computed: prepare() takes the blocks (allocating slots on first
  // use) and the next step's rule; update() and update_block() then apply
  // it to parts of them, each parameter once (parts on different threads
  // at once); finish_step() counts the step, which until then is not.
  void prepare(const std::vector<ParameterBlock<T>*>& blocks);
  // Parameters [start, start + count) of blocks[b], from gradient[0, count).
  void update(std::size_t b, index_t start, index_t count, const T* gradient);
  // All of blocks[b], from its gradient, in parallel.
  void update_block(std::size_t b, int threads);
  void finish_step() { iterations_ += 1; }

  // State, for saving and restoring: the step count and, per block, its
  // slots one after another.
  double iterations() const { return iterations_; }
  const std::vector<std::vector<T>>& slots() const { return slots_; }
  void restore(double iterations, std::vector<std::vector<T>> slots);

 private:
  OptimizerSpec spec_;
  double iterations_ = 0;
  std::vector<std::vector<T>> slots_;  // one per parameter block
  // Of the step prepared.
  std::vector<ParameterBlock<T>*> blocks_;
  UpdateRule<T> rule_;
};

}  // namespace lcnn
