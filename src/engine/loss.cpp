#include "loss.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "convert.hpp"
#include "parallel.hpp"

namespace lcnn {

namespace {

// Keras's backend epsilon, used to clip probabilities.
constexpr double kEpsilon = 1e-7;

// Values per parallel block of the loss: enough to amortise handing the
// block to a thread.
constexpr index_t kLossBlockValues = 16384;

// Target x as the loss computes with it: rounded to the loss's type T, as a
// batch tensor of T would hold it (loss_and_gradient()).
template <typename T, typename X>
double as_target(X x) {
  return static_cast<double>(static_cast<T>(x));
}

double sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

bool is_elementwise(LossKind kind) {
  return kind != LossKind::categorical_crossentropy &&
         kind != LossKind::sparse_categorical_crossentropy;
}

// One value's term of an elementwise loss (before the mean over the last
// axis) and its derivative by the prediction (or logit).
struct Term {
  double value, slope;
};

// Values [first, first + count) of an elementwise loss whose term of a
// prediction p and target t is term_of(p, t). Each value's term depends on
// it alone, so the values are swept in their memory order, whatever their
// row or channel; value v belongs to sample v % B (the batch is the
// innermost axis), so they come in runs of consecutive samples. Returns the
// block's weighted sum of terms; with kGradient, writes the gradient to g,
// which may hold the targets: each is read before it is written.
//
// Value i of a run goes to partial sum i % kLanes, the sums added in order
// at the end, and a whole step of kLanes values loads its operands first:
// the compiler then computes the step's terms in vector registers where
// term_of allows (W1's training step 6% faster than one value at a time;
// bench/NOTES.md). The split depends only on the block, not on the thread
// count.
template <bool kGradient, typename T, typename X, typename TermOf>
double sweep_elementwise(TermOf term_of, const Tensor<T>& input, const X* target,
                         const T* weights, index_t first, index_t count, T* g) {
  constexpr index_t kLanes = 8;
  const index_t B = input.batch();
  const double scale = 1.0 / static_cast<double>(input.shape.size());
  const T* p = input.data.data();
  double sums[kLanes] = {};
  // Value v (of sample `sample`, target t) into sum j.
  auto add = [&](index_t v, double t, index_t sample, index_t j) {
    const double w = weights ? static_cast<double>(weights[sample]) : 1.0;
    const Term term = term_of(static_cast<double>(p[v]), t);
    sums[j] += w * term.value;
    if constexpr (kGradient) g[v] = static_cast<T>(w * term.slope * scale);
  };
  // Values [v, v + length) of one run, from sample `sample` on, with their
  // targets from t on; value v + i into sum i % kLanes.
  auto sweep_run = [&](index_t v, index_t sample, index_t length, const T* t) {
    index_t i = 0;
    // Whole steps of kLanes values, all loaded before any gradient is
    // stored (grad may be the target).
    for (; i + kLanes <= length; i += kLanes) {
      double pv[kLanes], tv[kLanes], wv[kLanes];
#pragma GCC unroll 8
      for (index_t j = 0; j < kLanes; ++j) {
        pv[j] = static_cast<double>(p[v + i + j]);
        tv[j] = static_cast<double>(t[i + j]);
        wv[j] = weights ? static_cast<double>(weights[sample + i + j]) : 1.0;
      }
#pragma GCC unroll 8
      for (index_t j = 0; j < kLanes; ++j) {
        const Term term = term_of(pv[j], tv[j]);
        sums[j] += wv[j] * term.value;
        if constexpr (kGradient) g[v + i + j] = static_cast<T>(wv[j] * term.slope * scale);
      }
    }
    for (; i < length; ++i) add(v + i, static_cast<double>(t[i]), sample + i, i % kLanes);
  };
  for (index_t v = first, end = first + count; v < end;) {
    const index_t sample = v % B, run = std::min(B - sample, end - v);
    const X* const t = target + v;
    if constexpr (std::is_same<X, T>::value) {
      sweep_run(v, sample, run, t);
    } else {
      // Targets of another type are rounded to T a chunk at a time first
      // (as_target()). Rounding them inside the step instead, GCC 12's -O2
      // gave sums that differed from a batch tensor's in the last bits,
      // and agreed at -O1 or without its SLP vectoriser (bench/NOTES.md).
      // Whole steps per chunk keep each value's partial sum.
      constexpr index_t kChunk = 32 * kLanes;
      T rounded[kChunk];
      for (index_t c = 0; c < run; c += kChunk) {
        const index_t length = std::min(kChunk, run - c);
        convert_values(t + c, rounded, length);
        sweep_run(v + c, sample + c, length, rounded);
      }
    }
    v += run;
  }
  double total = 0;
  for (double sum : sums) total += sum;
  return total;
}

// The elementwise losses' terms, each swept in a loop of its own (one
// without the gradient's stores when grad is null).
template <typename T, typename X>
double elementwise_block(const LossSpec& loss, bool logits, const Tensor<T>& input,
                         const X* target, const T* weights, index_t first,
                         index_t count, Tensor<T>* grad) {
  auto sweep = [&](auto term_of) {
    return grad != nullptr ? sweep_elementwise<true>(term_of, input, target, weights, first,
                                                     count, grad->data.data())
                           : sweep_elementwise<false>(term_of, input, target, weights, first,
                                                      count, static_cast<T*>(nullptr));
  };
  switch (loss.kind) {
    case LossKind::mse:
      return sweep([](double p, double t) {
        const double e = p - t;
        return Term{e * e, 2 * e};
      });
    case LossKind::mae:
      return sweep([](double p, double t) {
        return Term{std::abs(p - t), p > t ? 1.0 : p < t ? -1.0 : 0.0};
      });
    case LossKind::huber:
      return sweep([delta = loss.delta](double p, double t) {
        const double e = p - t, a = std::abs(e);
        if (a <= delta) return Term{0.5 * e * e, e};
        return Term{delta * (a - 0.5 * delta), delta * (e > 0 ? 1.0 : -1.0)};
      });
    case LossKind::binary_crossentropy:
      if (logits) {
        return sweep([](double z, double t) {
          return Term{std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z))),
                      sigmoid(z) - t};
        });
      }
      // Keras clips to [eps, 1 - eps] and adds eps inside the logs.
      return sweep([](double p, double t) {
        const double q = std::min(std::max(p, kEpsilon), 1 - kEpsilon);
        const bool inside = p > kEpsilon && p < 1 - kEpsilon;
        return Term{-(t * std::log(q + kEpsilon) + (1 - t) * std::log(1 - q + kEpsilon)),
                    inside ? -(t / (q + kEpsilon) - (1 - t) / (1 - q + kEpsilon)) : 0.0};
      });
    case LossKind::categorical_crossentropy:
    case LossKind::sparse_categorical_crossentropy:
      break;
  }
  throw std::logic_error("elementwise_block: a categorical loss takes whole rows");
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
          elementwise_block(loss, logits, input, target, weights, first, count, grad);
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
