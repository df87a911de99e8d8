#include "loss.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "gemm.hpp"
#include "parallel.hpp"

namespace lcnn {

namespace {

// Values per parallel block of the loss: enough to amortise handing the
// block to a thread.
constexpr index_t kLossBlockValues = 16384;

// Target x as the loss computes with it: rounded to the loss's type T, as a
// batch tensor of T would hold it (loss_and_gradient()).
template <typename T, typename X>
double as_target(X x) {
  return static_cast<double>(static_cast<T>(x));
}

// Rows [first, first + rows) of a categorical crossentropy, whose terms
// need a whole row (the K values of one position) at a time: the row is
// gathered, and its targets read before its gradient, unless grad is null,
// is written (grad may hold the targets). Returns the block's weighted sum
// of row losses.
template <typename T, typename X>
double categorical_block(bool logits, bool sparse, const Tensor<T>& input,
                         const X* target, const T* weights, index_t first,
                         index_t rows, Tensor<T>* grad) {
  const index_t K = input.shape.dims.back();
  const index_t R = input.shape.size() / K;
  const index_t B = input.batch();
  std::vector<double> p(static_cast<std::size_t>(K)), t(static_cast<std::size_t>(K)),
      d(static_cast<std::size_t>(K));
  double total = 0;
  for (index_t r = first; r < first + rows; ++r) {
    const double w = weights ? static_cast<double>(weights[r % B]) : 1.0;
    for (index_t k = 0; k < K; ++k) {
      p[k] = input.data[r + k * R];
      t[k] = sparse ? (k == static_cast<index_t>(as_target<T>(target[r])) ? 1.0 : 0.0)
                    : as_target<T>(target[r + k * R]);
    }
    double row = 0, t_sum = 0;
    for (index_t k = 0; k < K; ++k) t_sum += t[k];
    if (logits) {
      // d holds exp(logit - top) until it becomes the gradient: the softmax
      // is that over its sum, one exponential a value.
      const double top = *std::max_element(p.begin(), p.end());
      double z_sum = 0;
      for (index_t k = 0; k < K; ++k) z_sum += d[k] = std::exp(p[k] - top);
      const double log_z = top + std::log(z_sum);
      for (index_t k = 0; k < K; ++k) {
        row -= t[k] * (p[k] - log_z);
        d[k] = d[k] / z_sum * t_sum - t[k];
      }
    } else {
      // Keras rescales the probabilities to sum 1, then clips them.
      double s = 0;
      for (index_t k = 0; k < K; ++k) s += p[k];
      double dq_dot_q = 0;
      for (index_t k = 0; k < K; ++k) {
        const double q_raw = p[k] / s;
        const double q = std::min(std::max(q_raw, kLossEpsilon), 1 - kLossEpsilon);
        row -= t[k] * std::log(q);
        d[k] = (q_raw > kLossEpsilon && q_raw < 1 - kLossEpsilon) ? -t[k] / q : 0.0;
        dq_dot_q += d[k] * q_raw;
      }
      for (index_t k = 0; k < K; ++k) d[k] = (d[k] - dq_dot_q) / s;
    }
    total += w * row;
    if (grad == nullptr) continue;
    for (index_t k = 0; k < K; ++k) grad->data[r + k * R] = static_cast<T>(w * d[k] / R);
  }
  return total;
}

}  // namespace

LossSpec parse_loss(const std::string& name, bool from_logits, double delta) {
  LossSpec spec;
  spec.from_logits = from_logits;
  spec.delta = delta;
  if (name == "mse" || name == "mean_squared_error") {
    spec.kind = LossKind::mse;
  } else if (name == "mae" || name == "mean_absolute_error") {
    spec.kind = LossKind::mae;
  } else if (name == "huber") {
    spec.kind = LossKind::huber;
  } else if (name == "binary_crossentropy") {
    spec.kind = LossKind::binary_crossentropy;
  } else if (name == "categorical_crossentropy") {
    spec.kind = LossKind::categorical_crossentropy;
  } else if (name == "sparse_categorical_crossentropy") {
    spec.kind = LossKind::sparse_categorical_crossentropy;
  } else {
    throw std::invalid_argument("unknown loss '" + name + "'");
  }
  return spec;
}

bool is_elementwise(LossKind kind) {
  return kind != LossKind::categorical_crossentropy &&
         kind != LossKind::sparse_categorical_crossentropy;
}

bool is_sparse(const LossSpec& loss) {
  return loss.kind == LossKind::sparse_categorical_crossentropy;
}

bool takes_logits_of(const LossSpec& loss, Activation output) {
  if (loss.from_logits) return false;
  if (loss.kind == LossKind::binary_crossentropy) return output == Activation::sigmoid;
  if (loss.kind == LossKind::categorical_crossentropy ||
      loss.kind == LossKind::sparse_categorical_crossentropy) {
    return output == Activation::softmax;
  }
  return false;
}

// Rows are the values sharing every index but the last axis: in column-major
// storage, row r's K values are r, r + R, ..., r + (K - 1) R.
//
// Rows are cut into blocks fixed by the shape; each block sums its rows'
// losses, and the blocks' sums are added in order: the same total for any
// number of threads.
template <typename T, typename X>
double loss_and_gradient(const LossSpec& loss, bool logits, const Tensor<T>& input,
                         const X* target, const T* weights, Tensor<T>* grad,
                         int threads) {
  const index_t K = input.shape.dims.back();
  const index_t R = input.shape.size() / K;
  if (grad != nullptr) grad->resize(input.shape);
  // Blocks fixed by the shape, their sums added in order: the loss does not
  // depend on the thread count.
  if (is_elementwise(loss.kind)) {
    const index_t values = R * K;
    std::vector<double> block_totals(
        static_cast<std::size_t>((values + kLossBlockValues - 1) / kLossBlockValues), 0.0);
    for_each_block(values, kLossBlockValues, threads, [&](index_t first, index_t count) {
      block_totals[first / kLossBlockValues] =
          elementwise_loss(loss, logits, input.data.data(), input.batch(), values, target,
                           weights, first, count, grad ? grad->data.data() : nullptr);
    });
    return std::accumulate(block_totals.begin(), block_totals.end(), 0.0) /
           static_cast<double>(values);
  }
  const bool sparse = is_sparse(loss);
  const index_t block = std::max<index_t>(1, kLossBlockValues / K);
  std::vector<double> block_totals(static_cast<std::size_t>((R + block - 1) / block), 0.0);
  for_each_block(R, block, threads, [&](index_t first, index_t rows) {
    block_totals[first / block] =
        categorical_block(logits, sparse, input, target, weights, first, rows, grad);
  });
  return std::accumulate(block_totals.begin(), block_totals.end(), 0.0) / R;
}

MetricKind parse_metric(const std::string& name) {
  if (name == "binary_accuracy") return MetricKind::binary_accuracy;
  if (name == "categorical_accuracy") return MetricKind::categorical_accuracy;
  if (name == "sparse_categorical_accuracy") return MetricKind::sparse_categorical_accuracy;
  if (name == "mae" || name == "mean_absolute_error") return MetricKind::mae;
  if (name == "mse" || name == "mean_squared_error") return MetricKind::mse;
  throw std::invalid_argument("unknown metric '" + name + "'");
}

void check_metric_targets(MetricKind metric, const LossSpec& loss, index_t classes) {
  if (is_sparse(loss) && classes > 1 && metric != MetricKind::sparse_categorical_accuracy) {
    throw std::invalid_argument(
        "a metric that reads one target per class cannot take the class indices of a sparse "
        "loss");
  }
}

template <typename T, typename X>
void accumulate_metric(MetricKind metric, const Tensor<T>& prediction, const X* target,
                       const T* weights, double& total, double& count) {
  const index_t K = prediction.shape.dims.back();
  const index_t R = prediction.shape.size() / K;
  const index_t B = prediction.batch();
  const T* p = prediction.data.data();
  for (index_t r = 0; r < R; ++r) {
    const double w = weights ? static_cast<double>(weights[r % B]) : 1.0;
    // The target of row r's class k.
    auto truth_of = [&](index_t k) { return as_target<T>(target[r + k * R]); };
    double value = 0;
    switch (metric) {
      case MetricKind::binary_accuracy:
        // Keras's threshold is 0.5, on whatever the model outputs.
        for (index_t k = 0; k < K; ++k) {
          value += ((p[r + k * R] > 0.5) == (truth_of(k) > 0.5)) ? 1.0 / K : 0.0;
        }
        break;
      case MetricKind::categorical_accuracy:
      case MetricKind::sparse_categorical_accuracy: {
        index_t best = 0, truth = 0;
        for (index_t k = 1; k < K; ++k) {
          if (p[r + k * R] > p[r + best * R]) best = k;
        }
        if (metric == MetricKind::sparse_categorical_accuracy) {
          truth = static_cast<index_t>(truth_of(0));
        } else {
          for (index_t k = 1; k < K; ++k) {
            if (truth_of(k) > truth_of(truth)) truth = k;
          }
        }
        value = best == truth ? 1.0 : 0.0;
        break;
      }
      case MetricKind::mae:
        for (index_t k = 0; k < K; ++k) value += std::abs(p[r + k * R] - truth_of(k)) / K;
        break;
      case MetricKind::mse:
        for (index_t k = 0; k < K; ++k) {
          const double e = p[r + k * R] - truth_of(k);
          value += e * e / K;
        }
        break;
    }
    total += w * value;
    count += w;
  }
}

// Targets of the loss's type (a batch tensor) or R's doubles in place.
#define LCNN_INSTANTIATE(T, X)                                                                 \
  template double loss_and_gradient<T, X>(const LossSpec&, bool, const Tensor<T>&,             \
                                          const X*, const T*, Tensor<T>*, int);                \
  template void accumulate_metric<T, X>(MetricKind, const Tensor<T>&, const X*, const T*,      \
                                        double&, double&);
LCNN_INSTANTIATE(float, float)
LCNN_INSTANTIATE(float, double)
LCNN_INSTANTIATE(double, double)
#undef LCNN_INSTANTIATE

}  // namespace lcnn
