#include "loss.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "parallel.hpp"

namespace lcnn {

namespace {

// Keras's backend epsilon, used to clip probabilities.
constexpr double kEpsilon = 1e-7;

// Values per parallel block of the loss: enough to amortise handing the
// block to a thread.
constexpr index_t kLossBlockValues = 16384;

double sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
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
template <typename T>
double loss_and_gradient(const LossSpec& loss, bool logits, const Tensor<T>& input,
                         const T* target, const T* weights, Tensor<T>& grad, int threads) {
  const index_t K = input.shape.dims.back();
  const index_t R = input.shape.size() / K;
  const index_t B = input.batch();
  const bool sparse = is_sparse(loss);
  grad.resize(input.shape);
  const index_t block = std::max<index_t>(1, kLossBlockValues / K);
  std::vector<double> block_totals(static_cast<std::size_t>((R + block - 1) / block), 0.0);
  for_each_block(R, block, threads, [&](index_t first, index_t rows) {
    std::vector<double> p(static_cast<std::size_t>(K)), t(static_cast<std::size_t>(K)),
        d(static_cast<std::size_t>(K));
    double total = 0;
    for (index_t r = first; r < first + rows; ++r) {
      const double w = weights ? static_cast<double>(weights[r % B]) : 1.0;
      for (index_t k = 0; k < K; ++k) {
        p[k] = input.data[r + k * R];
        t[k] = sparse ? (k == static_cast<index_t>(target[r]) ? 1.0 : 0.0) : target[r + k * R];
      }
      double row = 0;
      switch (loss.kind) {
        case LossKind::mse:
          for (index_t k = 0; k < K; ++k) {
            row += (p[k] - t[k]) * (p[k] - t[k]) / K;
            d[k] = 2 * (p[k] - t[k]) / K;
          }
          break;
        case LossKind::mae:
          for (index_t k = 0; k < K; ++k) {
            row += std::abs(p[k] - t[k]) / K;
            d[k] = (p[k] > t[k] ? 1.0 : p[k] < t[k] ? -1.0 : 0.0) / K;
          }
          break;
        case LossKind::huber:
          for (index_t k = 0; k < K; ++k) {
            const double e = p[k] - t[k], a = std::abs(e);
            row += (a <= loss.delta ? 0.5 * e * e : loss.delta * (a - 0.5 * loss.delta)) / K;
            d[k] = (a <= loss.delta ? e : loss.delta * (e > 0 ? 1.0 : -1.0)) / K;
          }
          break;
        case LossKind::binary_crossentropy:
          for (index_t k = 0; k < K; ++k) {
            if (logits) {
              const double z = p[k];
              row += (std::max(z, 0.0) - z * t[k] + std::log1p(std::exp(-std::abs(z)))) / K;
              d[k] = (sigmoid(z) - t[k]) / K;
            } else {
              // Keras clips to [eps, 1 - eps] and adds eps inside the logs.
              const double q = std::min(std::max(p[k], kEpsilon), 1 - kEpsilon);
              row -= (t[k] * std::log(q + kEpsilon) + (1 - t[k]) * std::log(1 - q + kEpsilon)) / K;
              const bool inside = p[k] > kEpsilon && p[k] < 1 - kEpsilon;
              d[k] = inside ? -(t[k] / (q + kEpsilon) - (1 - t[k]) / (1 - q + kEpsilon)) / K : 0.0;
            }
          }
          break;
        case LossKind::categorical_crossentropy:
        case LossKind::sparse_categorical_crossentropy: {
          double t_sum = 0;
          for (index_t k = 0; k < K; ++k) t_sum += t[k];
          if (logits) {
            const double top = *std::max_element(p.begin(), p.end());
            double z_sum = 0;
            for (index_t k = 0; k < K; ++k) z_sum += std::exp(p[k] - top);
            const double log_z = top + std::log(z_sum);
            for (index_t k = 0; k < K; ++k) {
              row -= t[k] * (p[k] - log_z);
              d[k] = std::exp(p[k] - log_z) * t_sum - t[k];
            }
          } else {
            // Keras rescales the probabilities to sum 1, then clips them.
            double s = 0;
            for (index_t k = 0; k < K; ++k) s += p[k];
            double dq_dot_q = 0;
            for (index_t k = 0; k < K; ++k) {
              const double q_raw = p[k] / s;
              const double q = std::min(std::max(q_raw, kEpsilon), 1 - kEpsilon);
              row -= t[k] * std::log(q);
              d[k] = (q_raw > kEpsilon && q_raw < 1 - kEpsilon) ? -t[k] / q : 0.0;
              dq_dot_q += d[k] * q_raw;
            }
            for (index_t k = 0; k < K; ++k) d[k] = (d[k] - dq_dot_q) / s;
          }
          break;
        }
      }
      total += w * row;
      for (index_t k = 0; k < K; ++k) grad.data[r + k * R] = static_cast<T>(w * d[k] / R);
    }
    block_totals[first / block] = total;
  });
  double total = 0;
  for (double t : block_totals) total += t;
  return total / R;
}

MetricKind parse_metric(const std::string& name) {
  if (name == "binary_accuracy") return MetricKind::binary_accuracy;
  if (name == "categorical_accuracy") return MetricKind::categorical_accuracy;
  if (name == "sparse_categorical_accuracy") return MetricKind::sparse_categorical_accuracy;
  if (name == "mae" || name == "mean_absolute_error") return MetricKind::mae;
  if (name == "mse" || name == "mean_squared_error") return MetricKind::mse;
  throw std::invalid_argument("unknown metric '" + name + "'");
}

template <typename T>
void accumulate_metric(MetricKind metric, const Tensor<T>& prediction, const T* target,
                       const T* weights, double& total, double& count) {
  const index_t K = prediction.shape.dims.back();
  const index_t R = prediction.shape.size() / K;
  const index_t B = prediction.batch();
  const T* p = prediction.data.data();
  for (index_t r = 0; r < R; ++r) {
    const double w = weights ? static_cast<double>(weights[r % B]) : 1.0;
    double value = 0;
    switch (metric) {
      case MetricKind::binary_accuracy:
        // Keras's threshold is 0.5, on whatever the model outputs.
        for (index_t k = 0; k < K; ++k) {
          value += ((p[r + k * R] > 0.5) == (target[r + k * R] > 0.5)) ? 1.0 / K : 0.0;
        }
        break;
      case MetricKind::categorical_accuracy:
      case MetricKind::sparse_categorical_accuracy: {
        index_t best = 0, truth = 0;
        for (index_t k = 1; k < K; ++k) {
          if (p[r + k * R] > p[r + best * R]) best = k;
        }
        if (metric == MetricKind::sparse_categorical_accuracy) {
          truth = static_cast<index_t>(target[r]);
        } else {
          for (index_t k = 1; k < K; ++k) {
            if (target[r + k * R] > target[r + truth * R]) truth = k;
          }
        }
        value = best == truth ? 1.0 : 0.0;
        break;
      }
      case MetricKind::mae:
        for (index_t k = 0; k < K; ++k) value += std::abs(p[r + k * R] - target[r + k * R]) / K;
        break;
      case MetricKind::mse:
        for (index_t k = 0; k < K; ++k) {
          const double e = p[r + k * R] - target[r + k * R];
          value += e * e / K;
        }
        break;
    }
    total += w * value;
    count += w;
  }
}

#define LCNN_INSTANTIATE(T)                                                               \
  template double loss_and_gradient<T>(const LossSpec&, bool, const Tensor<T>&, const T*, \
                                       const T*, Tensor<T>&, int);                        \
  template void accumulate_metric<T>(MetricKind, const Tensor<T>&, const T*, const T*,    \
                                     double&, double&);
LCNN_INSTANTIATE(float)
LCNN_INSTANTIATE(double)
#undef LCNN_INSTANTIATE

}  // namespace lcnn
