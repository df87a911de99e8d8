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

// Keras's backend epsilon, with which crossentropies clip probabilities.
constexpr double kLossEpsilon = 1e-7;

LossSpec parse_loss(const std::string& name, bool from_logits, double delta);
bool is_sparse(const LossSpec& loss);
// Whether each value's term depends on that value alone (mse, mae, huber,
// binary crossentropy), not on its whole row (the categorical losses).
bool is_elementwise(LossKind kind);

// Keras computes a crossentropy on probabilities that a sigmoid (binary) or
// softmax (categorical) output layer produced from its logits instead, for
// stability: true when `output` is such an activation for this loss.
bool takes_logits_of(const LossSpec& loss, Activation output);

// The batch loss; fills *grad (shaped like `input`) with dLoss/dInput, or
// with grad null computes the loss alone (evaluation). `input` holds logits
// when the loss is from_logits or takes the output's logits, else
// predictions. `target` holds the targets laid out as a batch tensor (dense:
// shaped like the prediction; sparse: without its last axis), of type T or,
// read in place from R's array when the batch is the whole data, double:
// each target is rounded to T first, so both give the same results.
// `weights` has one value per sample, or is null. `grad` may be the batch
// tensor that holds dense targets: each target is read before its gradient
// is written over it.
template <typename T, typename X>
double loss_and_gradient(const LossSpec& loss, bool logits, const Tensor<T>& input,
                         const X* target, const T* weights, Tensor<T>* grad, int threads);

enum class MetricKind {
  binary_accuracy,
  categorical_accuracy,
  sparse_categorical_accuracy,
  mae,
  mse
};

MetricKind parse_metric(const std::string& name);

// Throws std::invalid_argument unless `metric` reads the targets of `loss`
// for an output of `classes` values a row: sparse targets hold one class
// index a row, which the metrics other than sparse_categorical_accuracy
// would read as `classes` values, past the targets' end when classes > 1.
void check_metric_targets(MetricKind metric, const LossSpec& loss, index_t classes);

// Adds sum(w * row value) to `total` and sum(w) over rows to `count`:
// Keras's weighted running mean. `target` holds what the metric reads (see
// check_metric_targets()).
template <typename T, typename X>
void accumulate_metric(MetricKind metric, const Tensor<T>& prediction, const X* target,
                       const T* weights, double& total, double& count);

}  // namespace lcnn
