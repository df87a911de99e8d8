// Training inside the engine: whole epochs of mini-batches (gather, forward,
// loss, backward, optimizer step) with the caller told of progress between
// batches only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "constraint.hpp"
#include "loss.hpp"
#include "network.hpp"
#include "optimizer.hpp"

namespace lcnn {

struct TrainingSpec {
  LossSpec loss;
  std::vector<MetricKind> metrics;
  OptimizerSpec optimizer;
  // Per parameter block of the network, in order: whether it trains, its
  // regularization penalty and its constraint.
  std::vector<bool> trainable;
  std::vector<Penalty> penalties;
  std::vector<ConstraintSpec> constraints;
  // Per layer: the penalty on its outputs (activity regularizer).
  std::vector<Penalty> activity;
};

// A data set as R holds it: column-major (n, ...) arrays. Sparse targets
// have one value per row of the prediction; weights one per sample or none.
struct DataSet {
  const double* x = nullptr;
  const double* y = nullptr;
  const double* weights = nullptr;
  index_t n = 0;
  index_t x_features = 0, y_features = 0;
};

// Mean loss (including penalties) and metric values over the samples seen.
struct Scores {
  double loss = 0;
  std::vector<double> metrics;
};

class TrainerBase {
 public:
  virtual ~TrainerBase() = default;
  // Called after each batch with its index and the running scores; returning
  // false stops the epoch there (the finished batches keep their updates).
  using Progress = std::function<bool(index_t batch, const Scores& running)>;
  // One epoch over the samples in `order`; batch b's randomness (dropout)
  // comes from seed + b. Returns the scores and sets `completed` to false if
  // progress() stopped it.
  virtual Scores fit_epoch(const DataSet& data, const std::vector<index_t>& order,
                           index_t batch_size, std::uint64_t seed, const Context& ctx,
                           const Progress& progress, bool& completed) = 0;
  virtual Scores evaluate(const DataSet& data, index_t batch_size, const Context& ctx) = 0;
  // The network's parameters, block by block, as doubles; and back.
  virtual std::vector<std::vector<double>> parameters() const = 0;
  virtual void set_parameters(const std::vector<std::vector<double>>& values) = 0;
  // dLoss/dParameters on one batch (in training mode, without an update).
  virtual std::vector<std::vector<double>> gradients(const DataSet& data, std::uint64_t seed,
                                                     const Context& ctx) = 0;
  virtual void set_learning_rate(double lr) = 0;
  virtual double learning_rate() const = 0;
  virtual double iterations() const = 0;
  virtual std::vector<std::vector<double>> optimizer_slots() const = 0;
  virtual void restore_optimizer(double iterations,
                                 const std::vector<std::vector<double>>& slots) = 0;
  virtual NetworkBase& network() = 0;
};

template <typename T>
class Trainer : public TrainerBase {
 public:
  Trainer(std::unique_ptr<Network<T>> network, TrainingSpec spec);

  Scores fit_epoch(const DataSet& data, const std::vector<index_t>& order, index_t batch_size,
                   std::uint64_t seed, const Context& ctx, const Progress& progress,
                   bool& completed) override;
  Scores evaluate(const DataSet& data, index_t batch_size, const Context& ctx) override;
  std::vector<std::vector<double>> parameters() const override;
  void set_parameters(const std::vector<std::vector<double>>& values) override;
  std::vector<std::vector<double>> gradients(const DataSet& data, std::uint64_t seed,
                                             const Context& ctx) override;
  void set_learning_rate(double lr) override { optimizer_.set_learning_rate(lr); }
  double learning_rate() const override { return optimizer_.spec().learning_rate; }
  double iterations() const override { return optimizer_.iterations(); }
  std::vector<std::vector<double>> optimizer_slots() const override;
  void restore_optimizer(double iterations,
                         const std::vector<std::vector<double>>& slots) override;
  NetworkBase& network() override { return *network_; }

 private:
  struct Batch {
    Tensor<T> x, y;
    std::vector<T> weights;
  };
  void gather(const DataSet& data, const index_t* rows, index_t count, Batch& batch) const;
  // Forward and loss on one batch, and with ctx.training backward; returns
  // the batch loss with penalties and adds the metrics to the running sums.
  double forward_backward(Batch& batch, const Context& ctx, std::vector<double>& totals,
                          std::vector<double>& counts);
  // The regularization penalty; with add_gradient, its gradient is added to
  // the blocks' gradients.
  double penalty(bool add_gradient);

  std::unique_ptr<Network<T>> network_;
  TrainingSpec spec_;
  Optimizer<T> optimizer_;
  std::vector<ParameterBlock<T>*> blocks_;
};

}  // namespace lcnn
