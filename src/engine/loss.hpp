// Losses and metrics with Keras 2 definitions and reductions.
//
// Predictions are (B, ..., K) tensors; the loss of each "row" (every index
// but the last axis) is a mean over the last axis (mse, mae, huber, binary
// crossentropy) or a sum (categorical crossentropies), and the batch loss is
// Keras's sum_over_batch_size: sum(w * row loss) / number of rows, with each
// sample's weight w spread over its rows. Sparse targets hold one class
// index per row.
#pragma once

#include <string>

#include "activation.hpp"
#include "tensor.hpp"

namespace lcnn {

enum class LossKind {
  mse,
  mae,
  huber,
  binary_crossentropy,
  categorical_crossentropy,
  sparse_categorical_crossentropy
};

struct LossSpec {
  LossKind kind = LossKind::mse;
  bool from_logits = false;
  double delta = 1.0;  // huber
};

LossSpec parse_loss(const std::string& name, bool from_logits, double delta);
bool is_sparse(const LossSpec& loss);

// Keras computes a crossentropy on probabilities that a sigmoid (binary) or
// softmax (categorical) output layer produced from its logits instead, for
// stability: true when `output` is such an activation for this loss.
bool takes_logits_of(const LossSpec& loss, Activation output);

// The targets of a batch of B samples. Value v belongs to sample v % B and
// feature v / B, as in the prediction, and is read from
// values[first + v % B + (v / B) * stride]: from a batch tensor (first 0,
// stride B), or in place from R's array of all n samples (stride n) when
// the batch is the run of samples from `first` on, which saves copying the
// targets. Losses and metrics round each target to their type T first, so
// both give the same results.
template <typename X>
struct Targets {
  const X* values = nullptr;
  index_t first = 0, stride = 0, batch = 0;
  // Where value v's run of consecutive samples (up to sample B - 1) starts.
  const X* run(index_t v) const { return values + first + v % batch + v / batch * stride; }
};

// The targets held by a batch tensor (dense: shaped like the prediction;
// sparse: without its last axis).
template <typename T>
Targets<T> batch_targets(const Tensor<T>& target) {
  return {target.data.data(), 0, target.batch(), target.batch()};
}

// The batch loss; fills grad (shaped like `input`) with dLoss/dInput. `input`
// holds logits when the loss is from_logits or takes the output's logits,
// else predictions. `weights` has one value per sample, or is null. `grad`
// may be the batch tensor that holds dense targets: each target is read
// before its gradient is written over it.
template <typename T, typename X>
double loss_and_gradient(const LossSpec& loss, bool logits, const Tensor<T>& input,
                         const Targets<X>& target, const T* weights, Tensor<T>& grad,
                         int threads);

enum class MetricKind {
  binary_accuracy,
  categorical_accuracy,
  sparse_categorical_accuracy,
  mae,
  mse
};

MetricKind parse_metric(const std::string& name);

// Adds sum(w * row value) to `total` and sum(w) over rows to `count`:
// Keras's weighted running mean.
template <typename T, typename X>
void accumulate_metric(MetricKind metric, const Tensor<T>& prediction, const Targets<X>& target,
                       const T* weights, double& total, double& count);

}  // namespace lcnn
